//! Randomized equivalence test: the optimizer must not change what a plan computes.
//!
//! A seeded generator builds random plans (scans, filters, projections, joins of every
//! kind, aggregates, unions, top-N) over small tables of BIGINT columns with NULLs;
//! a tiny reference interpreter (below, test-only, covering just the expressions the
//! generator produces) runs each plan before and after optimization on the same data,
//! and the multisets of rows must be equal. Each rule alone and all rules together
//! are checked; the optimized plan must be a fixed point; and the lowered plans (of the
//! original and of the optimized plan, Calc fusion included) must compute the same rows
//! too.

use super::util::transform_up;
use super::{optimize, optimize_with, rules};
use crate::lower::lower;
use crate::physical::PhysicalPlan;
use crate::plan::{JoinKind, LogicalPlan};
use sluice_catalogs::{Field, Schema, SourceCapabilities, SqlType, TableDescriptor, Watermark};
use sluice_expr::datum::{Datum, Row};
use sluice_expr::expr::{AggFunc, AggregateCall, BinaryOp, ScalarExpr, SortKey};
use std::collections::BTreeMap;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn tables() -> Vec<TableDescriptor> {
    let mk =
        |name: &str, cols: &[&str], pushdown: bool, watermark: Option<usize>| TableDescriptor {
            name: name.to_string(),
            schema: Schema::new(
                cols.iter()
                    .map(|c| Field::new(*c, SqlType::BigInt))
                    .collect(),
            ),
            connector: "test".to_string(),
            options: BTreeMap::new(),
            watermark: watermark.map(|column| Watermark {
                column,
                delay_ms: 0,
            }),
            capabilities: SourceCapabilities {
                filter_pushdown: pushdown,
                projection_pushdown: pushdown,
                bounded: true,
                ..Default::default()
            },
        };
    vec![
        mk("t1", &["a", "b", "c"], true, Some(2)),
        mk("t2", &["d", "e"], false, None),
    ]
}

fn data(rng: &mut Rng) -> BTreeMap<String, Vec<Row>> {
    let mut out = BTreeMap::new();
    for t in tables() {
        let rows = (0..rng.below(7))
            .map(|_| {
                (0..t.schema.len())
                    .map(|_| {
                        if rng.chance(15) {
                            Datum::Null
                        } else {
                            Datum::Int(rng.below(4) as i64)
                        }
                    })
                    .collect()
            })
            .collect();
        out.insert(t.name.clone(), rows);
    }
    out
}

fn lit(v: i64) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Int(v), SqlType::BigInt)
}

fn bin(op: BinaryOp, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(op, a, b)
}

fn gen_scalar(rng: &mut Rng, width: usize) -> ScalarExpr {
    let c = ScalarExpr::Column(rng.below(width));
    if rng.chance(30) {
        bin(BinaryOp::Add, c, lit(rng.below(3) as i64))
    } else {
        c
    }
}

fn gen_atom(rng: &mut Rng, width: usize) -> ScalarExpr {
    let op = [BinaryOp::Gt, BinaryOp::Lt, BinaryOp::Eq][rng.below(3)];
    match rng.below(5) {
        0 => bin(op, gen_scalar(rng, width), lit(rng.below(4) as i64)),
        1 => bin(op, gen_scalar(rng, width), gen_scalar(rng, width)),
        2 => ScalarExpr::IsNull {
            expr: Box::new(ScalarExpr::Column(rng.below(width))),
            negated: rng.chance(50),
        },
        3 => ScalarExpr::Not(Box::new(bin(
            op,
            ScalarExpr::Column(rng.below(width)),
            lit(rng.below(4) as i64),
        ))),
        // A constant condition (no column): it may only move where its value cannot
        // change the row count (not below a global aggregate or an outer join).
        _ => bin(op, lit(rng.below(2) as i64), lit(rng.below(2) as i64)),
    }
}

fn gen_pred(rng: &mut Rng, width: usize) -> ScalarExpr {
    let mut p = gen_atom(rng, width);
    for _ in 0..rng.below(3) {
        let op = if rng.chance(80) {
            BinaryOp::And
        } else {
            BinaryOp::Or
        };
        p = bin(op, p, gen_atom(rng, width));
    }
    p
}

/// A join condition: usually an equality across the sides, plus random conjuncts.
fn gen_join_pred(rng: &mut Rng, lw: usize, rw: usize) -> Option<ScalarExpr> {
    let mut conjuncts = Vec::new();
    if rng.chance(80) {
        conjuncts.push(bin(
            BinaryOp::Eq,
            ScalarExpr::Column(rng.below(lw)),
            ScalarExpr::Column(lw + rng.below(rw)),
        ));
    }
    if rng.chance(50) {
        conjuncts.push(gen_pred(rng, lw + rw));
    }
    ScalarExpr::and_all(conjuncts)
}

fn gen_plan(rng: &mut Rng, depth: usize) -> LogicalPlan {
    let ts = tables();
    if depth == 0 || rng.chance(15) {
        let t = ts[rng.below(ts.len())].clone();
        let projection = if rng.chance(70) {
            (0..t.schema.len()).collect()
        } else {
            vec![t.schema.len() - 1, 0]
        };
        return LogicalPlan::Scan {
            table: t,
            projection,
            filters: vec![],
        };
    }
    let input = gen_plan(rng, depth - 1);
    let width = input.schema().len();
    match rng.below(7) {
        0 => LogicalPlan::Filter {
            input: Box::new(input),
            predicate: gen_pred(rng, width),
        },
        1 => {
            let n = 1 + rng.below(4);
            let exprs: Vec<ScalarExpr> = (0..n).map(|_| gen_scalar(rng, width)).collect();
            let names = (0..n).map(|i| format!("p{i}")).collect();
            LogicalPlan::Project {
                input: Box::new(input),
                exprs,
                names,
            }
        }
        2 => {
            let right = gen_plan(rng, depth - 1);
            let rw = right.schema().len();
            let kind = [
                JoinKind::Inner,
                JoinKind::Left,
                JoinKind::Right,
                JoinKind::Full,
            ][rng.below(4)];
            let join = LogicalPlan::Join {
                filter: gen_join_pred(rng, width, rw),
                left: Box::new(input),
                right: Box::new(right),
                kind,
                on: vec![],
            };
            if rng.chance(60) {
                LogicalPlan::Filter {
                    input: Box::new(join),
                    predicate: gen_pred(rng, width + rw),
                }
            } else {
                join
            }
        }
        3 => {
            let group_by: Vec<usize> = (0..rng.below(3)).map(|_| rng.below(width)).collect();
            let mut aggs: Vec<AggregateCall> = (0..rng.below(3))
                .map(|_| {
                    let (func, arg) = match rng.below(3) {
                        0 => (AggFunc::Count, None),
                        1 => (AggFunc::Count, Some(rng.below(width))),
                        _ => (AggFunc::Sum, Some(rng.below(width))),
                    };
                    AggregateCall {
                        func,
                        arg,
                        distinct: false,
                        ty: SqlType::BigInt,
                    }
                })
                .collect();
            if group_by.is_empty() && aggs.is_empty() {
                aggs.push(AggregateCall {
                    func: AggFunc::Count,
                    arg: None,
                    distinct: false,
                    ty: SqlType::BigInt,
                });
            }
            LogicalPlan::Aggregate {
                input: Box::new(input),
                group_by,
                aggs,
            }
        }
        4 => {
            let filtered = LogicalPlan::Filter {
                input: Box::new(input.clone()),
                predicate: gen_pred(rng, width),
            };
            LogicalPlan::Union {
                inputs: vec![input, filtered],
            }
        }
        5 => LogicalPlan::Sort {
            // Every column is a key: no ties, so the cut is deterministic.
            keys: (0..width)
                .rev()
                .map(|column| SortKey {
                    column,
                    descending: rng.chance(50),
                    nulls_first: false,
                })
                .collect(),
            limit: Some(rng.below(5) as u64),
            offset: rng.below(2) as u64,
            input: Box::new(input),
        },
        _ => {
            // A filter on top of anything, to give pushdown work.
            LogicalPlan::Filter {
                input: Box::new(input),
                predicate: gen_pred(rng, width),
            }
        }
    }
}

// ---- reference interpreter ----------------------------------------------------

fn eval(e: &ScalarExpr, row: &[Datum]) -> Datum {
    match e {
        ScalarExpr::Column(i) => row[*i].clone(),
        ScalarExpr::Literal(d, _) => d.clone(),
        ScalarExpr::Binary { op, left, right } => {
            let (l, r) = (eval(left, row), eval(right, row));
            match op {
                BinaryOp::And => match (l, r) {
                    (Datum::Bool(false), _) | (_, Datum::Bool(false)) => Datum::Bool(false),
                    (Datum::Bool(true), Datum::Bool(true)) => Datum::Bool(true),
                    _ => Datum::Null,
                },
                BinaryOp::Or => match (l, r) {
                    (Datum::Bool(true), _) | (_, Datum::Bool(true)) => Datum::Bool(true),
                    (Datum::Bool(false), Datum::Bool(false)) => Datum::Bool(false),
                    _ => Datum::Null,
                },
                _ => match (l, r) {
                    (Datum::Int(a), Datum::Int(b)) => match op {
                        BinaryOp::Add => Datum::Int(a + b),
                        BinaryOp::Gt => Datum::Bool(a > b),
                        BinaryOp::Lt => Datum::Bool(a < b),
                        BinaryOp::Eq => Datum::Bool(a == b),
                        other => unreachable!("generator does not produce {other:?}"),
                    },
                    _ => Datum::Null,
                },
            }
        }
        ScalarExpr::Not(e) => match eval(e, row) {
            Datum::Bool(b) => Datum::Bool(!b),
            _ => Datum::Null,
        },
        ScalarExpr::IsNull { expr, negated } => Datum::Bool(eval(expr, row).is_null() != *negated),
        other => unreachable!("generator does not produce {other:?}"),
    }
}

fn holds(e: &ScalarExpr, row: &[Datum]) -> bool {
    eval(e, row) == Datum::Bool(true)
}

fn exec(plan: &LogicalPlan, db: &BTreeMap<String, Vec<Row>>) -> Vec<Row> {
    match plan {
        LogicalPlan::Scan {
            table,
            projection,
            filters,
        } => db[&table.name]
            .iter()
            .map(|r| projection.iter().map(|&i| r[i].clone()).collect::<Row>())
            .filter(|r| filters.iter().all(|f| holds(f, r)))
            .collect(),
        LogicalPlan::Values { rows, .. } => rows.clone(),
        LogicalPlan::Filter { input, predicate } => exec(input, db)
            .into_iter()
            .filter(|r| holds(predicate, r))
            .collect(),
        LogicalPlan::Project { input, exprs, .. } => exec(input, db)
            .iter()
            .map(|r| exprs.iter().map(|e| eval(e, r)).collect())
            .collect(),
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => {
            let (ls, rs) = (exec(left, db), exec(right, db));
            let (lw, rw) = (left.schema().len(), right.schema().len());
            let mut out = Vec::new();
            let mut right_matched = vec![false; rs.len()];
            for l in &ls {
                let mut matched = false;
                for (j, r) in rs.iter().enumerate() {
                    let keys_eq = on.iter().all(|(a, b)| {
                        let (x, y) = (eval(a, l), eval(b, r));
                        !x.is_null() && x == y
                    });
                    let row: Row = l.iter().chain(r).cloned().collect();
                    if keys_eq && filter.as_ref().is_none_or(|f| holds(f, &row)) {
                        matched = true;
                        right_matched[j] = true;
                        out.push(row);
                    }
                }
                if !matched && matches!(kind, JoinKind::Left | JoinKind::Full) {
                    out.push(l.iter().cloned().chain(vec![Datum::Null; rw]).collect());
                }
            }
            if matches!(kind, JoinKind::Right | JoinKind::Full) {
                for (j, r) in rs.iter().enumerate() {
                    if !right_matched[j] {
                        out.push(
                            vec![Datum::Null; lw]
                                .into_iter()
                                .chain(r.iter().cloned())
                                .collect(),
                        );
                    }
                }
            }
            out
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => {
            let mut groups: BTreeMap<Row, Vec<Row>> = BTreeMap::new();
            for r in exec(input, db) {
                groups
                    .entry(group_by.iter().map(|&g| r[g].clone()).collect())
                    .or_default()
                    .push(r);
            }
            if group_by.is_empty() && groups.is_empty() {
                groups.insert(vec![], vec![]);
            }
            groups
                .into_iter()
                .map(|(key, rows)| {
                    let mut out = key;
                    for a in aggs {
                        let vals: Vec<i64> = rows
                            .iter()
                            .filter_map(|r| match a.arg {
                                None => Some(1),
                                Some(c) => match r[c] {
                                    Datum::Int(v) => Some(v),
                                    _ => None,
                                },
                            })
                            .collect();
                        out.push(match a.func {
                            AggFunc::Count => Datum::Int(vals.len() as i64),
                            _ if vals.is_empty() => Datum::Null,
                            _ => Datum::Int(vals.iter().sum()),
                        });
                    }
                    out
                })
                .collect()
        }
        LogicalPlan::Union { inputs } => inputs.iter().flat_map(|i| exec(i, db)).collect(),
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => {
            let mut rows = exec(input, db);
            rows.sort_by(|a, b| {
                keys.iter()
                    .map(|k| {
                        let o = a[k.column].cmp(&b[k.column]);
                        if k.descending {
                            o.reverse()
                        } else {
                            o
                        }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            rows.into_iter()
                .skip(*offset as usize)
                .take(limit.map_or(usize::MAX, |l| l as usize))
                .collect()
        }
        LogicalPlan::Window { .. } => unreachable!("generator does not produce windows"),
        LogicalPlan::TopK { .. } => unreachable!("generator does not produce Top-K"),
        LogicalPlan::Over { .. } => unreachable!("generator does not produce OVER aggregates"),
    }
}

/// Runs a physical plan by translating each operator back to its logical meaning
/// (a Calc is a filter, then a projection), independently of how it was lowered.
fn exec_physical(plan: &PhysicalPlan, db: &BTreeMap<String, Vec<Row>>) -> Vec<Row> {
    exec(&to_logical(plan), db)
}

fn to_logical(plan: &PhysicalPlan) -> LogicalPlan {
    match plan {
        PhysicalPlan::Source {
            table,
            projection,
            filters,
        } => LogicalPlan::Scan {
            table: table.clone(),
            projection: projection.clone(),
            filters: filters.clone(),
        },
        PhysicalPlan::Values { schema, rows } => LogicalPlan::Values {
            schema: schema.clone(),
            rows: rows.clone(),
        },
        PhysicalPlan::Calc {
            input,
            predicate,
            project,
            names,
        } => {
            let mut node = to_logical(input);
            if let Some(p) = predicate {
                node = LogicalPlan::Filter {
                    input: Box::new(node),
                    predicate: p.clone(),
                };
            }
            if let Some(exprs) = project {
                node = LogicalPlan::Project {
                    input: Box::new(node),
                    exprs: exprs.clone(),
                    names: names.clone(),
                };
            }
            node
        }
        PhysicalPlan::Reduce {
            input,
            group_by,
            aggs,
            ..
        }
        | PhysicalPlan::WindowAggregate {
            input,
            group_by,
            aggs,
            ..
        } => LogicalPlan::Aggregate {
            input: Box::new(to_logical(input)),
            group_by: group_by.clone(),
            aggs: aggs.clone(),
        },
        PhysicalPlan::HashJoin {
            left,
            right,
            kind,
            left_keys,
            right_keys,
            residual,
            ..
        } => LogicalPlan::Join {
            left: Box::new(to_logical(left)),
            right: Box::new(to_logical(right)),
            kind: *kind,
            on: left_keys
                .iter()
                .cloned()
                .zip(right_keys.iter().cloned())
                .collect(),
            filter: residual.clone(),
        },
        PhysicalPlan::Union { inputs } => LogicalPlan::Union {
            inputs: inputs.iter().map(to_logical).collect(),
        },
        PhysicalPlan::TopN {
            input,
            keys,
            limit,
            offset,
        } => LogicalPlan::Sort {
            input: Box::new(to_logical(input)),
            keys: keys.clone(),
            limit: *limit,
            offset: *offset,
        },
        PhysicalPlan::WindowAssign { .. } | PhysicalPlan::SessionAssign { .. } => {
            unreachable!("generator does not produce windows")
        }
        PhysicalPlan::TopK { .. } => unreachable!("generator does not produce Top-K"),
        PhysicalPlan::Over { .. } => unreachable!("generator does not produce OVER aggregates"),
    }
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

/// The number of nodes, to make sure the generator builds non-trivial plans.
fn size(plan: LogicalPlan) -> usize {
    let mut n = 0;
    let _ = transform_up(plan, &mut |p| {
        n += 1;
        Ok(p)
    });
    n
}

#[test]
fn optimized_plans_compute_the_same_rows() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut nodes = 0;
    for case in 0..400 {
        let plan = gen_plan(&mut rng, 4);
        nodes += size(plan.clone());
        let db = data(&mut rng);
        let expected = sorted(exec(&plan, &db));
        let mut single: Vec<Vec<Box<dyn super::Rule>>> =
            rules().into_iter().map(|r| vec![r]).collect();
        single.push(rules());
        for rule_set in single {
            let names: Vec<&str> = rule_set.iter().map(|r| r.name()).collect();
            let optimized = optimize_with(plan.clone(), &rule_set).unwrap_or_else(|e| {
                panic!(
                    "case {case} {names:?}: {e}\n{}",
                    crate::explain::explain_logical(&plan)
                )
            });
            let got = sorted(exec(&optimized, &db));
            assert_eq!(
                got,
                expected,
                "case {case} {names:?}\nbefore:\n{}after:\n{}",
                crate::explain::explain_logical(&plan),
                crate::explain::explain_logical(&optimized)
            );
        }
        let optimized = optimize(plan.clone()).unwrap();
        for logical in [&plan, &optimized] {
            let physical =
                lower(logical).unwrap_or_else(|e| panic!("case {case}: lowering failed: {e}"));
            assert_eq!(
                sorted(exec_physical(&physical, &db)),
                expected,
                "case {case}: lowering changed the result\nlogical:\n{}physical:\n{}",
                crate::explain::explain_logical(logical),
                crate::explain::explain_physical(&physical)
            );
        }
        assert_eq!(
            optimize(optimized.clone()).unwrap(),
            optimized,
            "case {case}: not a fixed point"
        );
    }
    assert!(nodes > 400 * 4, "generator too shallow: {nodes} nodes");
}
