//! Binding of every supported construct: plan shapes, output names and types.

mod common;

use common::{bind, out_schema, out_types, plan, shape};
use sluice_catalogs::SqlType::{self, *};
use sluice_compiler::{
    AggFunc, BinaryOp, Datum, ExplainStage, Func, JoinKind, LogicalPlan, ScalarExpr, SinkTarget,
    SortKey, TimeUnit, WindowKind,
};

fn dec(precision: u8, scale: u8) -> SqlType {
    Decimal { precision, scale }
}

/// The expressions of the top Project of a plan.
fn top_exprs(p: &LogicalPlan) -> Vec<ScalarExpr> {
    match p {
        LogicalPlan::Project { exprs, .. } => exprs.clone(),
        other => panic!("expected a Project on top, got {}", shape(other)),
    }
}

fn first_expr(sql: &str) -> ScalarExpr {
    top_exprs(&plan(sql)).remove(0)
}

fn target(sql: &str) -> SinkTarget {
    bind(sql).expect("binds").outputs.remove(0).target
}

fn key(column: usize, descending: bool, nulls_first: bool) -> SortKey {
    SortKey {
        column,
        descending,
        nulls_first,
    }
}

#[test]
fn projection_filter_and_names() {
    let p = plan("SELECT a, b + 1 AS x, T.s FROM t WHERE a > 1");
    assert_eq!(shape(&p), "Project(Filter(Scan:t))");
    assert_eq!(
        out_schema("SELECT a, b + 1 AS x, T.s FROM t WHERE a > 1"),
        vec![
            ("a".into(), Int),
            ("x".into(), BigInt),
            ("s".into(), Varchar)
        ]
    );
    // Names are case-insensitive; the declared spelling is kept.
    assert_eq!(
        out_schema("SELECT DATETIME FROM bid"),
        vec![("dateTime".into(), Timestamp)]
    );
}

#[test]
fn star_and_qualified_star() {
    assert_eq!(out_types("SELECT * FROM u"), vec![Int, Varchar]);
    assert_eq!(
        out_types("SELECT u.*, t.a FROM t, u"),
        vec![Int, Varchar, Int]
    );
    assert_eq!(out_types("SELECT x.* FROM u AS x"), vec![Int, Varchar]);
}

#[test]
fn literal_types_follow_duckdb() {
    assert_eq!(
        out_types("SELECT 1, 3000000000, 1.5, 0.05, 1e3, 'x', TRUE, NULL, DATE '2024-01-02', TIMESTAMP '2024-01-01 00:00:01.5', INTERVAL '1.5' SECOND"),
        vec![Int, BigInt, dec(2, 1), dec(3, 2), Double, Varchar, Boolean, SqlType::Null, Date, Timestamp, Interval]
    );
    assert_eq!(
        first_expr("SELECT DATE '1970-01-02'"),
        ScalarExpr::Literal(Datum::Date(1), Date)
    );
    assert_eq!(
        first_expr("SELECT TIMESTAMP '1970-01-01 00:00:01.500'"),
        ScalarExpr::Literal(Datum::Timestamp(1500), Timestamp)
    );
    assert_eq!(
        first_expr("SELECT INTERVAL '2' DAY"),
        ScalarExpr::Literal(Datum::Interval(2 * 86_400_000), Interval)
    );
    assert_eq!(
        first_expr("SELECT -5"),
        ScalarExpr::Literal(Datum::Int(-5), Int)
    );
    // As in DuckDB, the negation of a BIGINT literal stays BIGINT.
    assert_eq!(
        first_expr("SELECT -2147483648"),
        ScalarExpr::Literal(Datum::Int(-2147483648), BigInt)
    );
}

#[test]
fn arithmetic_coercions() {
    assert_eq!(
        out_types("SELECT a + b, a + c, a + d, a / 2, d / d, b % 3, -a, c * 2, a * 2 FROM t"),
        vec![
            BigInt,
            Double,
            dec(13, 2),
            Double,
            Double,
            BigInt,
            Int,
            Double,
            Int
        ]
    );
    // INT + BIGINT: the INT side is cast.
    assert_eq!(
        first_expr("SELECT a + b FROM t"),
        ScalarExpr::binary(
            BinaryOp::Add,
            ScalarExpr::Cast {
                expr: Box::new(ScalarExpr::Column(0)),
                to: BigInt
            },
            ScalarExpr::Column(1)
        )
    );
    // Temporal arithmetic.
    assert_eq!(
        out_types("SELECT ts + INTERVAL '1' HOUR, ts - ts, dt + 1, dt - dt, INTERVAL '1' SECOND * 3, dt + INTERVAL '1' DAY FROM t"),
        vec![Timestamp, Interval, Date, BigInt, Interval, Timestamp]
    );
    assert_eq!(
        out_types("SELECT s || a, 'x' || s FROM t"),
        vec![Varchar, Varchar]
    );
}

#[test]
fn comparisons_are_coerced_to_a_common_type() {
    // string literal vs DATE: the literal becomes a DATE constant.
    let p = plan("SELECT a FROM t WHERE dt >= '2024-01-01' AND ts > dt AND d > 1");
    let LogicalPlan::Project { input, .. } = p else {
        panic!()
    };
    let LogicalPlan::Filter { predicate, .. } = *input else {
        panic!()
    };
    let conj = predicate.conjuncts();
    assert_eq!(
        conj[0],
        ScalarExpr::binary(
            BinaryOp::GtEq,
            ScalarExpr::Column(5),
            ScalarExpr::Literal(Datum::Date(19723), Date)
        )
    );
    assert_eq!(
        conj[1],
        ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::Column(6),
            ScalarExpr::Cast {
                expr: Box::new(ScalarExpr::Column(5)),
                to: Timestamp
            }
        )
    );
    // DECIMAL vs integer literal: the integer becomes DECIMAL(10,0).
    assert_eq!(
        conj[2],
        ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::Column(3),
            ScalarExpr::Literal(Datum::Decimal(1), dec(10, 0))
        )
    );
}

#[test]
fn conditional_expressions() {
    assert_eq!(
        out_types("SELECT CASE WHEN a > 1 THEN a ELSE b END, CASE s WHEN 'x' THEN 1 WHEN 'y' THEN 2.5 END, COALESCE(a, b, 0), NULLIF(a, 0), IF(flag, 'y', 'n') FROM t"),
        vec![BigInt, dec(11, 1), BigInt, Int, Varchar]
    );
    // Simple CASE becomes searched CASE with equality conditions.
    match first_expr("SELECT CASE a WHEN 1 THEN 'one' END FROM t") {
        ScalarExpr::Case { whens, else_ } => {
            assert_eq!(
                whens[0].0,
                ScalarExpr::binary(
                    BinaryOp::Eq,
                    ScalarExpr::Column(0),
                    ScalarExpr::Literal(Datum::Int(1), Int)
                )
            );
            assert!(else_.is_none());
        }
        other => panic!("{other:?}"),
    }
    // NULLIF(a, b) = CASE WHEN a = b THEN NULL ELSE a END
    match first_expr("SELECT NULLIF(a, 0) FROM t") {
        ScalarExpr::Case { whens, else_ } => {
            assert_eq!(whens[0].1, ScalarExpr::Literal(Datum::Null, Int));
            assert_eq!(else_.as_deref(), Some(&ScalarExpr::Column(0)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn predicates() {
    assert_eq!(
        out_types("SELECT a IN (1, 2), a NOT IN (b, 3), a BETWEEN 1 AND 3, s LIKE 'a%', s NOT LIKE 'b', s ILIKE 'A%', s IS NULL, s IS NOT NULL, flag IS TRUE, flag IS NOT FALSE, NOT flag FROM t"),
        vec![Boolean; 11]
    );
    assert_eq!(
        out_types("SELECT a IS DISTINCT FROM b, s IS NOT DISTINCT FROM 'x' FROM t"),
        vec![Boolean, Boolean]
    );
    match first_expr("SELECT a IS NOT DISTINCT FROM 1 FROM t") {
        ScalarExpr::Not(inner) => assert!(matches!(*inner, ScalarExpr::Case { .. })),
        other => panic!("{other:?}"),
    }
    // IN list items share the probe's type.
    match first_expr("SELECT a IN (1, b) FROM t") {
        ScalarExpr::InList { expr, list, .. } => {
            assert_eq!(
                *expr,
                ScalarExpr::Cast {
                    expr: Box::new(ScalarExpr::Column(0)),
                    to: BigInt
                }
            );
            assert_eq!(list[0], ScalarExpr::Literal(Datum::Int(1), BigInt));
        }
        other => panic!("{other:?}"),
    }
    // BETWEEN → a >= lo AND a <= hi; NOT BETWEEN → a < lo OR a > hi.
    match first_expr("SELECT a NOT BETWEEN 1 AND 3 FROM t") {
        ScalarExpr::Binary {
            op: BinaryOp::Or,
            left,
            ..
        } => assert!(matches!(
            *left,
            ScalarExpr::Binary {
                op: BinaryOp::Lt,
                ..
            }
        )),
        other => panic!("{other:?}"),
    }
    // IS TRUE → COALESCE(x, FALSE)
    assert_eq!(
        first_expr("SELECT flag IS TRUE FROM t"),
        ScalarExpr::Coalesce(vec![
            ScalarExpr::Column(7),
            ScalarExpr::Literal(Datum::Bool(false), Boolean)
        ])
    );
}

#[test]
fn scalar_functions() {
    assert_eq!(
        out_types(
            "SELECT UPPER(s), LOWER(s), SUBSTRING(s FROM 2 FOR 3), SUBSTRING(s, 2), SUBSTR(s, 1, 2), \
             CHAR_LENGTH(s), CHARACTER_LENGTH(s), LENGTH(s), CONCAT(s, a, 'x'), TRIM(s), \
             TRIM(LEADING 'x' FROM s), TRIM(TRAILING 'y' FROM s), LTRIM(s), RTRIM(s), REPLACE(s, 'a', 'b'), \
             POSITION('a' IN s) FROM t"
        ),
        vec![
            Varchar, Varchar, Varchar, Varchar, Varchar, BigInt, BigInt, BigInt, Varchar, Varchar,
            Varchar, Varchar, Varchar, Varchar, Varchar, BigInt
        ]
    );
    assert_eq!(
        out_types(
            "SELECT ABS(a), ABS(d), ROUND(c), ROUND(d, 1), FLOOR(d), CEIL(c), CEILING(a), MOD(b, 3), \
             POWER(a, 2), POW(c, 0.5), SQRT(a), LN(c), EXP(1) FROM t"
        ),
        vec![Int, dec(10, 2), Double, dec(10, 2), dec(10, 0), Double, Int, BigInt, Double, Double, Double, Double, Double]
    );
    assert_eq!(
        out_types(
            "SELECT EXTRACT(YEAR FROM ts), EXTRACT(QUARTER FROM dt), EXTRACT(MONTH FROM ts), EXTRACT(WEEK FROM ts), \
             EXTRACT(DAY FROM ts), EXTRACT(DOW FROM ts), EXTRACT(DOY FROM ts), EXTRACT(HOUR FROM ts), \
             EXTRACT(MINUTE FROM ts), EXTRACT(SECOND FROM ts), EXTRACT(MILLISECOND FROM ts), EXTRACT(EPOCH FROM ts), \
             DATE_TRUNC('hour', ts), DATE_TRUNC('month', dt), FLOOR(ts TO MINUTE), CEIL(ts TO DAY) FROM t"
        ),
        vec![
            BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt, BigInt,
            Timestamp, Timestamp, Timestamp, Timestamp
        ]
    );
    // CONCAT is NULL when any argument is (Flink), as `||`.
    assert_eq!(
        first_expr("SELECT CONCAT(s, a, 'x') FROM t"),
        ScalarExpr::binary(
            BinaryOp::Concat,
            ScalarExpr::binary(
                BinaryOp::Concat,
                ScalarExpr::Column(4),
                ScalarExpr::Cast {
                    expr: Box::new(ScalarExpr::Column(0)),
                    to: Varchar
                }
            ),
            ScalarExpr::Literal(Datum::Str("x".into()), Varchar)
        )
    );
    assert_eq!(
        first_expr("SELECT FLOOR(ts TO HOUR) FROM t"),
        ScalarExpr::Call {
            func: Func::DateTrunc(TimeUnit::Hour),
            args: vec![ScalarExpr::Column(6)]
        }
    );
    assert_eq!(
        first_expr("SELECT MOD(a, 2) FROM t"),
        ScalarExpr::binary(
            BinaryOp::Mod,
            ScalarExpr::Column(0),
            ScalarExpr::Literal(Datum::Int(2), Int)
        )
    );
    // CAST of a fraction to an integer truncates toward zero (Flink).
    match first_expr("SELECT CAST(c AS INT) FROM t") {
        ScalarExpr::Cast { expr, to: Int } => match *expr {
            ScalarExpr::Case { whens, else_ } => {
                assert_eq!(
                    whens[0].1,
                    ScalarExpr::Call {
                        func: Func::Floor,
                        args: vec![ScalarExpr::Column(2)]
                    }
                );
                assert_eq!(
                    else_.as_deref(),
                    Some(&ScalarExpr::Call {
                        func: Func::Ceil,
                        args: vec![ScalarExpr::Column(2)]
                    })
                );
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(out_types("SELECT CAST(d AS BIGINT) FROM t"), vec![BigInt]);
    assert_eq!(
        out_types("SELECT CAST(a AS VARCHAR), CAST(s AS DECIMAL(5,2)), CAST(ts AS DATE), CAST('1' AS BIGINT), CAST(c AS DECIMAL), CAST(a AS STRING), CAST(a AS TEXT), CAST(a AS FLOAT) FROM t"),
        vec![Varchar, dec(5, 2), Date, BigInt, dec(10, 0), Varchar, Varchar, Double]
    );
}

#[test]
fn joins() {
    let p = plan("SELECT * FROM t JOIN u ON t.a = u.a AND t.b > 1");
    assert_eq!(shape(&p), "Project(Join:Inner(Scan:t, Scan:u))");
    let LogicalPlan::Project { input, .. } = &p else {
        panic!()
    };
    let LogicalPlan::Join { on, filter, .. } = input.as_ref() else {
        panic!()
    };
    assert!(on.is_empty(), "the whole ON condition goes to the filter");
    assert!(filter.is_some());
    for (sql, kind) in [
        ("SELECT t.a FROM t LEFT JOIN u ON t.a = u.a", JoinKind::Left),
        (
            "SELECT t.a FROM t LEFT OUTER JOIN u ON t.a = u.a",
            JoinKind::Left,
        ),
        (
            "SELECT t.a FROM t RIGHT JOIN u ON t.a = u.a",
            JoinKind::Right,
        ),
        (
            "SELECT t.a FROM t FULL OUTER JOIN u ON t.a = u.a",
            JoinKind::Full,
        ),
        (
            "SELECT t.a FROM t INNER JOIN u ON t.a = u.a",
            JoinKind::Inner,
        ),
        ("SELECT t.a FROM t CROSS JOIN u", JoinKind::Inner),
    ] {
        assert_eq!(
            shape(&plan(sql)),
            format!("Project(Join:{kind:?}(Scan:t, Scan:u))"),
            "{sql}"
        );
    }
    // Comma join + WHERE.
    assert_eq!(
        shape(&plan("SELECT t.a FROM t, u WHERE t.a = u.a")),
        "Project(Filter(Join:Inner(Scan:t, Scan:u)))"
    );
    // USING merges the key: unqualified `a` is not ambiguous and * shows it once.
    assert_eq!(out_schema("SELECT * FROM t JOIN u USING (a)").len(), 9);
    assert_eq!(
        out_types("SELECT a, u.a FROM t JOIN u USING (a)"),
        vec![Int, Int]
    );
    assert_eq!(
        out_types("SELECT a FROM t FULL JOIN u USING (a)"),
        vec![Int]
    );
    // Interval join: just a join with a range condition.
    assert_eq!(
        out_types("SELECT p.name, b.price FROM bid b JOIN person p ON b.bidder = p.id AND b.dateTime BETWEEN p.dateTime - INTERVAL '1' HOUR AND p.dateTime"),
        vec![Varchar, BigInt]
    );
}

#[test]
fn subqueries_ctes_and_views() {
    assert_eq!(
        out_schema("SELECT q.y FROM (SELECT a + 1 AS y FROM t) AS q WHERE q.y > 2"),
        vec![("y".into(), Int)]
    );
    assert_eq!(
        out_schema("SELECT z.m FROM (SELECT a FROM t) AS z(m)"),
        vec![("m".into(), Int)]
    );
    assert_eq!(
        out_types("WITH a1 AS (SELECT a, s FROM t), b1 AS (SELECT s FROM a1 WHERE a > 1) SELECT * FROM b1"),
        vec![Varchar]
    );
    let s = bind("CREATE VIEW v (k, n) AS SELECT s, COUNT(*) FROM t GROUP BY s; SELECT k, n FROM v WHERE n > 1").unwrap();
    assert_eq!(s.outputs.len(), 1);
    assert_eq!(s.outputs[0].schema.types(), vec![Varchar, BigInt]);
    // ORDER BY + LIMIT in a subquery becomes a Sort node.
    assert_eq!(
        shape(&plan(
            "SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 2) x"
        )),
        "Project(Sort(Project(Scan:t)))"
    );
}

#[test]
fn aggregation_plan_shape() {
    let p =
        plan("SELECT s, COUNT(*) AS n, SUM(b) FROM t WHERE a > 0 GROUP BY s HAVING COUNT(*) > 1");
    assert_eq!(
        shape(&p),
        "Project(Filter(Aggregate(Project(Filter(Scan:t)))))"
    );
    assert_eq!(
        out_types("SELECT COUNT(*), COUNT(a), COUNT(DISTINCT a), SUM(a), SUM(d), SUM(c), AVG(a), MIN(s), MAX(ts), SUM(DISTINCT b) FROM t"),
        vec![BigInt, BigInt, BigInt, BigInt, dec(38, 2), Double, Double, Varchar, Timestamp, BigInt]
    );
    // Global aggregate: no group columns.
    let LogicalPlan::Project { input, .. } = plan("SELECT COUNT(DISTINCT a) FROM t") else {
        panic!()
    };
    let LogicalPlan::Aggregate { group_by, aggs, .. } = *input else {
        panic!()
    };
    assert!(group_by.is_empty());
    assert_eq!(aggs[0].func, AggFunc::Count);
    assert!(aggs[0].distinct);
    // FILTER (WHERE c) moves into the argument: COUNT(CASE WHEN c THEN 1 END).
    let LogicalPlan::Project { input, .. } =
        plan("SELECT COUNT(*) FILTER (WHERE a > 1), SUM(b) FILTER (WHERE flag) FROM t")
    else {
        panic!()
    };
    let LogicalPlan::Aggregate { input, aggs, .. } = *input else {
        panic!()
    };
    assert_eq!(aggs[0].func, AggFunc::Count);
    assert_eq!(aggs[0].arg, Some(0));
    assert_eq!(aggs[1].ty, BigInt);
    let LogicalPlan::Project { exprs, .. } = *input else {
        panic!()
    };
    assert_eq!(
        exprs[0],
        ScalarExpr::Case {
            whens: vec![(
                ScalarExpr::binary(
                    BinaryOp::Gt,
                    ScalarExpr::Column(0),
                    ScalarExpr::Literal(Datum::Int(1), Int)
                ),
                ScalarExpr::Literal(Datum::Int(1), Int)
            )],
            else_: None
        }
    );
    // Aggregates inside expressions, repeated aggregates shared.
    let LogicalPlan::Project { input, exprs, .. } =
        plan("SELECT SUM(b) / COUNT(*), ROUND(AVG(c), 2), SUM(b) FROM t")
    else {
        panic!()
    };
    let LogicalPlan::Aggregate { aggs, .. } = *input else {
        panic!()
    };
    assert_eq!(aggs.len(), 3);
    assert_eq!(exprs[2], ScalarExpr::Column(0));
}

#[test]
fn group_by_forms() {
    // By ordinal, by alias, by expression.
    assert_eq!(
        out_types("SELECT s, COUNT(*) FROM t GROUP BY 1"),
        vec![Varchar, BigInt]
    );
    assert_eq!(
        out_types("SELECT UPPER(s) AS k, COUNT(*) FROM t GROUP BY k"),
        vec![Varchar, BigInt]
    );
    assert_eq!(
        out_types("SELECT a + 1, COUNT(*) FROM t GROUP BY a + 1 HAVING a + 1 > 2"),
        vec![Int, BigInt]
    );
    // An expression over group columns is fine.
    assert_eq!(out_types("SELECT a * 2 FROM t GROUP BY a"), vec![Int]);
    // DISTINCT = group by all columns, no aggregates.
    let p = plan("SELECT DISTINCT s, a FROM t");
    assert_eq!(shape(&p), "Aggregate(Project(Scan:t))");
    let LogicalPlan::Aggregate { group_by, aggs, .. } = p else {
        panic!()
    };
    assert_eq!(group_by, vec![0, 1]);
    assert!(aggs.is_empty());
}

#[test]
fn window_table_functions() {
    for sql in [
        "SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))",
        "SELECT * FROM TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)",
    ] {
        let p = plan(sql);
        assert_eq!(shape(&p), "Project(Window(Scan:bid))");
        let LogicalPlan::Project { input, .. } = p else {
            panic!()
        };
        assert_eq!(
            *input,
            LogicalPlan::Window {
                input: Box::new(match *input.clone() {
                    LogicalPlan::Window { input, .. } => *input,
                    _ => unreachable!(),
                }),
                kind: WindowKind::Tumble { size_ms: 10_000 },
                time_col: 5,
                partition_by: vec![],
            }
        );
        let names: Vec<String> = out_schema(sql).into_iter().map(|(n, _)| n).collect();
        assert_eq!(&names[7..], ["window_start", "window_end", "window_time"]);
    }
    let p = plan("SELECT window_start, window_end, COUNT(*) FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) GROUP BY window_start, window_end");
    assert_eq!(shape(&p), "Project(Aggregate(Project(Window(Scan:bid))))");
    let p = plan("SELECT * FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(dateTime), INTERVAL '5' MINUTE)) w");
    let LogicalPlan::Project { input, .. } = p else {
        panic!()
    };
    let LogicalPlan::Window {
        kind, partition_by, ..
    } = *input
    else {
        panic!()
    };
    assert_eq!(kind, WindowKind::Session { gap_ms: 300_000 });
    assert_eq!(partition_by, vec![1]);
    // The alias qualifies window columns too.
    assert_eq!(
        out_types("SELECT w.window_start, w.price FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '1' MINUTE)) AS w"),
        vec![Timestamp, BigInt]
    );
}

#[test]
fn legacy_group_windows() {
    let sql = "SELECT auction, TUMBLE_START(dateTime, INTERVAL '10' SECOND) AS ws, TUMBLE_END(dateTime, INTERVAL '10' SECOND), TUMBLE_ROWTIME(dateTime, INTERVAL '10' SECOND), COUNT(*) FROM bid GROUP BY TUMBLE(dateTime, INTERVAL '10' SECOND), auction";
    let p = plan(sql);
    assert_eq!(shape(&p), "Project(Aggregate(Project(Window(Scan:bid))))");
    assert_eq!(
        out_types(sql),
        vec![BigInt, Timestamp, Timestamp, Timestamp, BigInt]
    );
    let LogicalPlan::Project { input, .. } = &p else {
        panic!()
    };
    let LogicalPlan::Aggregate {
        input, group_by, ..
    } = input.as_ref()
    else {
        panic!()
    };
    assert_eq!(group_by, &vec![0, 1, 2]);
    let schema = input.schema();
    assert_eq!(schema.fields[0].name, "window_start");
    assert_eq!(schema.fields[1].name, "window_end");
    let sql = "SELECT HOP_START(dateTime, INTERVAL '1' SECOND, INTERVAL '5' SECOND), HOP_END(dateTime, INTERVAL '1' SECOND, INTERVAL '5' SECOND), SUM(price) FROM bid GROUP BY HOP(dateTime, INTERVAL '1' SECOND, INTERVAL '5' SECOND)";
    assert_eq!(out_types(sql), vec![Timestamp, Timestamp, BigInt]);
    let sql = "SELECT bidder, SESSION_START(dateTime, INTERVAL '10' SECOND), SESSION_END(dateTime, INTERVAL '10' SECOND), COUNT(*) FROM bid GROUP BY SESSION(dateTime, INTERVAL '10' SECOND), bidder";
    let p = plan(sql);
    let LogicalPlan::Project { input, .. } = p else {
        panic!()
    };
    let LogicalPlan::Aggregate { input, .. } = *input else {
        panic!()
    };
    let LogicalPlan::Project { input, .. } = *input else {
        panic!()
    };
    let LogicalPlan::Window {
        kind, partition_by, ..
    } = *input
    else {
        panic!()
    };
    assert_eq!(kind, WindowKind::Session { gap_ms: 10_000 });
    assert_eq!(partition_by, vec![1]);
}

#[test]
fn union_and_set_types() {
    let p = plan("SELECT a FROM t UNION ALL SELECT b FROM t");
    assert_eq!(
        shape(&p),
        "Union(Project(Project(Scan:t)), Project(Scan:t))"
    );
    assert_eq!(p.schema().types(), vec![BigInt]);
    assert_eq!(
        shape(&plan("SELECT a FROM t UNION SELECT a FROM u")),
        "Aggregate(Union(Project(Scan:t), Project(Scan:u)))"
    );
    assert_eq!(
        plan("SELECT a FROM t UNION ALL SELECT a FROM u UNION ALL SELECT 1")
            .inputs()
            .len(),
        3
    );
}

#[test]
fn order_by_limit_offset_at_top_level_go_to_collect() {
    assert_eq!(
        target("SELECT a, b AS x FROM t ORDER BY x DESC, 1 NULLS FIRST, t.b LIMIT 10 OFFSET 5"),
        SinkTarget::Collect {
            order: vec![
                key(1, true, false),
                key(0, false, true),
                key(1, false, false)
            ],
            limit: Some(10),
            offset: 5
        }
    );
    // An ORDER BY expression outside the select list needs a sort-only column: it stays
    // at the end of the plan's rows, the Collect orders by it, and the output schema
    // leaves it out.
    let sql = "SELECT a FROM t ORDER BY c DESC, a + 1 LIMIT 2";
    assert_eq!(shape(&plan(sql)), "Project(Scan:t)");
    assert_eq!(out_types(sql), vec![Int, Double, Int]);
    let out = bind(sql).unwrap().outputs.remove(0);
    assert_eq!(out.schema.types(), vec![Int]);
    assert_eq!(
        out.target,
        SinkTarget::Collect {
            order: vec![key(1, true, false), key(2, false, false)],
            limit: Some(2),
            offset: 0
        }
    );
    // In a subquery the same query sorts in a Sort node and projects the column away.
    assert_eq!(
        shape(&plan(
            "SELECT * FROM (SELECT a FROM t ORDER BY c DESC LIMIT 2) x"
        )),
        "Project(Project(Sort(Project(Scan:t))))"
    );
    // Ordering by an aggregate and by a group column.
    assert_eq!(
        target("SELECT s, COUNT(*) FROM t GROUP BY s ORDER BY COUNT(*) DESC, s"),
        SinkTarget::Collect {
            order: vec![key(1, true, false), key(0, false, false)],
            limit: None,
            offset: 0
        }
    );
    assert_eq!(
        target("SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY a DESC LIMIT 1"),
        SinkTarget::Collect {
            order: vec![key(0, true, false)],
            limit: Some(1),
            offset: 0
        }
    );
    // Never a Sort node at top level.
    assert_eq!(
        shape(&plan("SELECT a FROM t ORDER BY a LIMIT 1")),
        "Project(Scan:t)"
    );
}

#[test]
fn insert_adds_casts_to_the_table_types() {
    let s = bind("INSERT INTO sink2 SELECT a, a FROM t").unwrap();
    let out = &s.outputs[0];
    assert!(matches!(&out.target, SinkTarget::Table(t) if t.name == "sink2"));
    assert_eq!(out.logical.schema().types(), vec![BigInt, BigInt]);
    assert_eq!(out.schema.types(), vec![BigInt, BigInt]);
    assert_eq!(
        top_exprs(&out.logical)[0],
        ScalarExpr::Cast {
            expr: Box::new(ScalarExpr::Column(0)),
            to: BigInt
        }
    );
    // Explicit column list, in another order.
    let s = bind("INSERT INTO sink_s (n, name) SELECT b, s FROM t").unwrap();
    assert_eq!(
        top_exprs(&s.outputs[0].logical),
        vec![ScalarExpr::Column(1), ScalarExpr::Column(0)]
    );
    // INSERT with ORDER BY/LIMIT keeps a Sort node.
    let s = bind("INSERT INTO sink2 SELECT b, b FROM t ORDER BY b LIMIT 3").unwrap();
    assert_eq!(
        shape(&s.outputs[0].logical),
        "Project(Sort(Project(Scan:t)))"
    );
    // INSERT … VALUES.
    let s = bind("INSERT INTO sink2 VALUES (1, 2), (3, NULL)").unwrap();
    assert_eq!(s.outputs[0].logical.schema().types(), vec![BigInt, BigInt]);
}

#[test]
fn scripts_with_ddl_set_views_and_multiple_inserts() {
    let s = bind(
        "SET 'execution.runtime-mode' = 'streaming';\n\
         CREATE TABLE src (\n  id BIGINT NOT NULL,\n  name STRING,\n  price DECIMAL(10, 2),\n  d DECIMAL,\n  r REAL,\n  ts TIMESTAMP(3),\n  day DATE,\n  ok BOOLEAN,\n  c CHAR(3),\n  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,\n  PRIMARY KEY (id) NOT ENFORCED\n) WITH (\n  'connector' = 'kafka',\n  'topic' = 'src',\n  'format' = 'json'\n);\n\
         CREATE TABLE dst (id BIGINT, n BIGINT) WITH ('connector' = 'blackhole');\n\
         CREATE VIEW big AS SELECT * FROM src WHERE price > 10;\n\
         INSERT INTO dst SELECT id, COUNT(*) FROM big GROUP BY id;\n\
         INSERT INTO dst SELECT id, 1 FROM src",
    )
    .unwrap();
    assert_eq!(s.tables.len(), 2);
    let src = &s.tables[0];
    assert_eq!(src.name, "src");
    assert_eq!(
        src.schema.types(),
        vec![
            BigInt,
            Varchar,
            dec(10, 2),
            dec(10, 0),
            Double,
            Timestamp,
            Date,
            Boolean,
            Varchar
        ]
    );
    assert!(!src.schema.fields[0].nullable);
    assert_eq!(src.connector, "kafka");
    assert_eq!(src.option("format"), Some("json"));
    // connector, topic, format, and the PRIMARY KEY passed on to the connector.
    assert_eq!(src.options.len(), 4);
    assert_eq!(src.option("primary-key"), Some("id"));
    let wm = src.watermark.as_ref().unwrap();
    assert_eq!((wm.column, wm.delay_ms), (5, 5000));
    assert!(src.capabilities.filter_pushdown);
    assert_eq!(s.outputs.len(), 2);
    assert!(s.explain.is_none());
    // Watermark with no delay.
    let s = bind("CREATE TABLE e (ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'x'); SELECT * FROM e").unwrap();
    assert_eq!(s.tables[0].watermark.as_ref().map(|w| w.delay_ms), Some(0));
}

#[test]
fn explain_statements() {
    for (sql, stage) in [
        ("EXPLAIN SELECT a FROM t", ExplainStage::All),
        ("EXPLAIN LOGICAL SELECT a FROM t", ExplainStage::Logical),
        ("EXPLAIN OPTIMIZED SELECT a FROM t", ExplainStage::Optimized),
        (
            "EXPLAIN PHYSICAL INSERT INTO sink2 SELECT b, b FROM t",
            ExplainStage::Physical,
        ),
    ] {
        let s = bind(sql).unwrap();
        assert!(s.outputs.is_empty(), "{sql}");
        let (got, out) = s.explain.expect("explain");
        assert_eq!(got, stage, "{sql}");
        assert!(!out.schema.is_empty());
    }
}

#[test]
fn select_without_from_and_values() {
    assert_eq!(shape(&plan("SELECT 1 + 1")), "Project(Values:1)");
    let p = plan("VALUES (1, 'a'), (2, NULL)");
    assert_eq!(shape(&p), "Values:2");
    assert_eq!(p.schema().types(), vec![Int, Varchar]);
    let p = plan("VALUES (1), (2.5)");
    assert_eq!(
        p,
        LogicalPlan::Values {
            schema: sluice_catalogs::Schema::new(vec![sluice_catalogs::Field::new(
                "col0",
                dec(11, 1)
            )]),
            rows: vec![vec![Datum::Decimal(10)], vec![Datum::Decimal(25)]]
        }
    );
}
