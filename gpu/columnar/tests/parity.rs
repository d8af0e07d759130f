//! Parity property tests: the columnar kernels ([`CpuKernels::evaluate`]) agree with
//! the row evaluator on random typed batches (with NULLs and extreme values) and random
//! well-typed expressions: same values (DOUBLEs bit-equal or both NaN) and the same
//! error-ness. Plus round trips between rows and batches.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use sluice_catalogs::{Field, Schema, SqlType};
use sluice_columnar::{array_value, batch_to_rows, rows_to_batch, ColumnarKernels, CpuKernels};
use sluice_expr::eval::Evaluator;
use sluice_expr::{BinaryOp, Datum, Func, Row, ScalarExpr, TimeUnit, F64};

const DEC_A: SqlType = SqlType::Decimal {
    precision: 10,
    scale: 2,
};
const DEC_B: SqlType = SqlType::Decimal {
    precision: 18,
    scale: 4,
};

/// The column types of every generated batch.
const TYPES: [SqlType; 14] = [
    SqlType::Int,
    SqlType::BigInt,
    SqlType::Double,
    DEC_A,
    DEC_B,
    SqlType::Varchar,
    SqlType::Date,
    SqlType::Timestamp,
    SqlType::Boolean,
    SqlType::Interval,
    SqlType::Int,
    SqlType::Double,
    SqlType::Varchar,
    SqlType::BigInt,
];

fn schema() -> Schema {
    Schema::new(
        TYPES
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("c{i}"), *t))
            .collect(),
    )
}

fn int_value() -> BoxedStrategy<i64> {
    prop_oneof![
        4 => -20i64..20,
        1 => Just(i64::from(i32::MAX)),
        1 => Just(i64::from(i32::MIN)),
        1 => Just(-1i64),
        1 => Just(0i64),
        1 => any::<i32>().prop_map(i64::from),
    ]
    .boxed()
}

fn bigint_value() -> BoxedStrategy<i64> {
    prop_oneof![
        4 => -1000i64..1000,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => Just(0i64),
        1 => any::<i64>(),
    ]
    .boxed()
}

fn double_value() -> BoxedStrategy<f64> {
    prop_oneof![
        4 => (-400i32..400).prop_map(|v| f64::from(v) / 4.0),
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(3e9),
        1 => Just(1e300),
        1 => any::<f64>(),
    ]
    .boxed()
}

fn decimal_value(precision: u32) -> BoxedStrategy<i128> {
    let max = 10i128.pow(precision) - 1;
    prop_oneof![
        4 => -100_000i128..100_000,
        1 => Just(max),
        1 => Just(-max),
        1 => Just(0i128),
        1 => -max..=max,
    ]
    .boxed()
}

fn string_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[ab%_ éßİ]{0,6}",
        1 => "(&?a=[bé&x]{0,3}){0,3}",
        1 => Just(String::new()),
        1 => Just("42".to_string()),
        1 => Just(" 2024-02-29 ".to_string()),
        1 => Just("1.5".to_string()),
    ]
    .boxed()
}

fn value(ty: SqlType) -> BoxedStrategy<Datum> {
    let v: BoxedStrategy<Datum> = match ty {
        SqlType::Int => int_value().prop_map(Datum::Int).boxed(),
        SqlType::BigInt => bigint_value().prop_map(Datum::Int).boxed(),
        SqlType::Double => double_value().prop_map(|f| Datum::Float(F64(f))).boxed(),
        SqlType::Decimal { precision, .. } => decimal_value(u32::from(precision))
            .prop_map(Datum::Decimal)
            .boxed(),
        SqlType::Varchar => string_value().prop_map(Datum::Str).boxed(),
        SqlType::Date => (-30_000i32..30_000).prop_map(Datum::Date).boxed(),
        SqlType::Timestamp => prop_oneof![
            4 => -2_000_000_000_000i64..2_000_000_000_000,
            1 => Just(i64::MAX),
        ]
        .prop_map(Datum::Timestamp)
        .boxed(),
        SqlType::Boolean => any::<bool>().prop_map(Datum::Bool).boxed(),
        SqlType::Interval => prop_oneof![
            4 => -100_000_000i64..100_000_000,
            1 => Just(i64::MAX),
        ]
        .prop_map(Datum::Interval)
        .boxed(),
        SqlType::Null => Just(Datum::Null).boxed(),
    };
    prop_oneof![1 => Just(Datum::Null), 4 => v].boxed()
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    let row: Vec<BoxedStrategy<Datum>> = TYPES.iter().map(|t| value(*t)).collect();
    proptest::collection::vec(row, 0..12)
}

/// Expression result kinds the generator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    BigInt,
    Double,
    /// Any DECIMAL type.
    Dec,
    Str,
    Date,
    Ts,
    Interval,
}

const KINDS: [Kind; 9] = [
    Kind::Bool,
    Kind::Int,
    Kind::BigInt,
    Kind::Double,
    Kind::Dec,
    Kind::Str,
    Kind::Date,
    Kind::Ts,
    Kind::Interval,
];

fn kind_types(k: Kind) -> Vec<SqlType> {
    match k {
        Kind::Bool => vec![SqlType::Boolean],
        Kind::Int => vec![SqlType::Int],
        Kind::BigInt => vec![SqlType::BigInt],
        Kind::Double => vec![SqlType::Double],
        Kind::Dec => vec![DEC_A, DEC_B],
        Kind::Str => vec![SqlType::Varchar],
        Kind::Date => vec![SqlType::Date],
        Kind::Ts => vec![SqlType::Timestamp],
        Kind::Interval => vec![SqlType::Interval],
    }
}

fn leaf(k: Kind) -> BoxedStrategy<ScalarExpr> {
    let types = kind_types(k);
    let cols: Vec<ScalarExpr> = TYPES
        .iter()
        .enumerate()
        .filter(|(_, t)| types.contains(t))
        .map(|(i, _)| ScalarExpr::col(i))
        .collect();
    let ty = types[0];
    let lit = value(ty).prop_map(move |d| ScalarExpr::lit(d, ty));
    prop_oneof![3 => proptest::sample::select(cols), 1 => lit].boxed()
}

fn bin(op: BinaryOp) -> impl Fn((ScalarExpr, ScalarExpr)) -> ScalarExpr + Clone {
    move |(l, r)| ScalarExpr::binary(op, l, r)
}

fn call1(func: Func) -> impl Fn(ScalarExpr) -> ScalarExpr + Clone {
    move |a| ScalarExpr::Call {
        func,
        args: vec![a],
    }
}

fn cast(to: SqlType) -> impl Fn(ScalarExpr) -> ScalarExpr + Clone {
    move |e| ScalarExpr::Cast {
        expr: Box::new(e),
        to,
    }
}

fn arith_ops() -> BoxedStrategy<BinaryOp> {
    proptest::sample::select(vec![
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
    ])
    .boxed()
}

fn cmp_ops() -> BoxedStrategy<BinaryOp> {
    proptest::sample::select(vec![
        BinaryOp::Eq,
        BinaryOp::NotEq,
        BinaryOp::Lt,
        BinaryOp::LtEq,
        BinaryOp::Gt,
        BinaryOp::GtEq,
    ])
    .boxed()
}

/// Strategies for every kind at every depth, built bottom-up (shared, not re-created).
fn expr_strategies(depth: usize) -> Vec<BoxedStrategy<ScalarExpr>> {
    let mut level: Vec<BoxedStrategy<ScalarExpr>> = KINDS.iter().map(|k| leaf(*k)).collect();
    for _ in 0..depth {
        let prev = level.clone();
        let p = |k: Kind| prev[KINDS.iter().position(|x| *x == k).unwrap_or(0)].clone();
        let case_of = |k: Kind| {
            (
                p(Kind::Bool),
                p(k),
                p(Kind::Bool),
                p(k),
                proptest::option::of(p(k)),
            )
                .prop_map(|(c1, r1, c2, r2, e)| ScalarExpr::Case {
                    whens: vec![(c1, r1), (c2, r2)],
                    else_: e.map(Box::new),
                })
                .boxed()
        };
        let coalesce_of = |k: Kind| {
            (p(k), p(k))
                .prop_map(|(a, b)| ScalarExpr::Coalesce(vec![a, b]))
                .boxed()
        };
        let cmp_of = |k: Kind| {
            (cmp_ops(), p(k), p(k))
                .prop_map(|(op, l, r)| ScalarExpr::binary(op, l, r))
                .boxed()
        };
        let in_of = |k: Kind| {
            (p(k), proptest::collection::vec(p(k), 1..4), any::<bool>())
                .prop_map(|(e, list, negated)| ScalarExpr::InList {
                    expr: Box::new(e),
                    list,
                    negated,
                })
                .boxed()
        };
        let arith_of = |k: Kind| {
            (arith_ops(), p(k), p(k))
                .prop_map(|(op, l, r)| ScalarExpr::binary(op, l, r))
                .boxed()
        };
        let like = (
            p(Kind::Str),
            proptest::sample::select(vec!["a%", "%b", "_", "%a_%", "", "a\\%", "é%", "%"]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(e, pat, negated, ci)| ScalarExpr::Like {
                expr: Box::new(e),
                pattern: Box::new(ScalarExpr::lit(Datum::Str(pat.into()), SqlType::Varchar)),
                negated,
                case_insensitive: ci,
            })
            .boxed();
        let bool_s = prop_oneof![
            p(Kind::Bool),
            cmp_of(Kind::Int),
            cmp_of(Kind::BigInt),
            cmp_of(Kind::Double),
            cmp_of(Kind::Dec),
            cmp_of(Kind::Str),
            cmp_of(Kind::Date),
            cmp_of(Kind::Ts),
            cmp_of(Kind::Bool),
            cmp_of(Kind::Interval),
            (p(Kind::Bool), p(Kind::Bool)).prop_map(bin(BinaryOp::And)),
            (p(Kind::Bool), p(Kind::Bool)).prop_map(bin(BinaryOp::Or)),
            p(Kind::Bool).prop_map(|e| ScalarExpr::Not(Box::new(e))),
            (p(Kind::Double), any::<bool>()).prop_map(|(e, negated)| ScalarExpr::IsNull {
                expr: Box::new(e),
                negated
            }),
            in_of(Kind::Int),
            in_of(Kind::Dec),
            in_of(Kind::Str),
            like,
            case_of(Kind::Bool),
            p(Kind::Int).prop_map(cast(SqlType::Boolean)),
        ]
        .boxed();
        let int_s = prop_oneof![
            p(Kind::Int),
            arith_of(Kind::Int),
            p(Kind::Int).prop_map(|e| ScalarExpr::Negate(Box::new(e))),
            p(Kind::Int).prop_map(call1(Func::Abs)),
            p(Kind::BigInt).prop_map(cast(SqlType::Int)),
            p(Kind::Double).prop_map(cast(SqlType::Int)),
            p(Kind::Dec).prop_map(cast(SqlType::Int)),
            p(Kind::Str).prop_map(cast(SqlType::Int)),
            (p(Kind::Int), -3i64..3).prop_map(|(e, d)| ScalarExpr::Call {
                func: Func::Round,
                args: vec![e, ScalarExpr::lit(Datum::Int(d), SqlType::Int)],
            }),
            case_of(Kind::Int),
            coalesce_of(Kind::Int),
        ]
        .boxed();
        let bigint_s = prop_oneof![
            p(Kind::BigInt),
            arith_of(Kind::BigInt),
            p(Kind::BigInt).prop_map(|e| ScalarExpr::Negate(Box::new(e))),
            p(Kind::Int).prop_map(cast(SqlType::BigInt)),
            p(Kind::Double).prop_map(cast(SqlType::BigInt)),
            p(Kind::Str).prop_map(call1(Func::CharLength)),
            (p(Kind::Str), p(Kind::Str)).prop_map(|(a, b)| ScalarExpr::Call {
                func: Func::Position,
                args: vec![a, b]
            }),
            (
                p(Kind::Ts),
                proptest::sample::select(vec![
                    TimeUnit::Year,
                    TimeUnit::Quarter,
                    TimeUnit::Month,
                    TimeUnit::Week,
                    TimeUnit::Day,
                    TimeUnit::DayOfWeek,
                    TimeUnit::DayOfYear,
                    TimeUnit::Hour,
                    TimeUnit::Minute,
                    TimeUnit::Second,
                    TimeUnit::Millisecond,
                    TimeUnit::Epoch,
                ])
            )
                .prop_map(|(e, u)| ScalarExpr::Call {
                    func: Func::Extract(u),
                    args: vec![e]
                }),
            (p(Kind::Date), p(Kind::Date)).prop_map(bin(BinaryOp::Sub)),
            case_of(Kind::BigInt),
        ]
        .boxed();
        let double_s = prop_oneof![
            p(Kind::Double),
            arith_of(Kind::Double),
            p(Kind::Double).prop_map(|e| ScalarExpr::Negate(Box::new(e))),
            p(Kind::Int).prop_map(cast(SqlType::Double)),
            p(Kind::BigInt).prop_map(cast(SqlType::Double)),
            p(Kind::Dec).prop_map(cast(SqlType::Double)),
            (p(Kind::Dec), p(Kind::Dec)).prop_map(bin(BinaryOp::Div)),
            p(Kind::Double).prop_map(call1(Func::Sqrt)),
            p(Kind::Double).prop_map(call1(Func::Ln)),
            p(Kind::Double).prop_map(call1(Func::Exp)),
            p(Kind::Double).prop_map(call1(Func::Floor)),
            (p(Kind::Double), p(Kind::Double)).prop_map(|(a, b)| ScalarExpr::Call {
                func: Func::Power,
                args: vec![a, b]
            }),
            (p(Kind::Double), -2i64..3).prop_map(|(e, d)| ScalarExpr::Call {
                func: Func::Round,
                args: vec![e, ScalarExpr::lit(Datum::Int(d), SqlType::Int)],
            }),
            case_of(Kind::Double),
            coalesce_of(Kind::Double),
        ]
        .boxed();
        let dec_s = prop_oneof![
            p(Kind::Dec),
            (
                proptest::sample::select(vec![
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Mod
                ]),
                p(Kind::Dec),
                p(Kind::Dec)
            )
                .prop_map(|(op, l, r)| ScalarExpr::binary(op, l, r)),
            p(Kind::Dec).prop_map(|e| ScalarExpr::Negate(Box::new(e))),
            p(Kind::Dec).prop_map(call1(Func::Abs)),
            p(Kind::Dec).prop_map(call1(Func::Ceil)),
            p(Kind::Int).prop_map(cast(DEC_A)),
            p(Kind::Double).prop_map(cast(DEC_B)),
            p(Kind::Dec).prop_map(cast(DEC_A)),
            p(Kind::Str).prop_map(cast(DEC_A)),
        ]
        .boxed();
        let str_s = prop_oneof![
            p(Kind::Str),
            p(Kind::Str).prop_map(call1(Func::Upper)),
            p(Kind::Str).prop_map(call1(Func::Lower)),
            (p(Kind::Str), -2i64..5, proptest::option::of(-1i64..4)).prop_map(|(e, s, l)| {
                let mut args = vec![e, ScalarExpr::lit(Datum::Int(s), SqlType::BigInt)];
                args.extend(l.map(|l| ScalarExpr::lit(Datum::Int(l), SqlType::BigInt)));
                ScalarExpr::Call {
                    func: Func::Substring,
                    args,
                }
            }),
            (p(Kind::Str), p(Kind::Str)).prop_map(bin(BinaryOp::Concat)),
            (p(Kind::Str), p(Kind::Str)).prop_map(|(a, b)| ScalarExpr::Call {
                func: Func::Concat,
                args: vec![a, b]
            }),
            p(Kind::Str).prop_map(call1(Func::Trim)),
            (p(Kind::Str), p(Kind::Str), p(Kind::Str)).prop_map(|(a, b, c)| ScalarExpr::Call {
                func: Func::Replace,
                args: vec![a, b, c]
            }),
            p(Kind::Int).prop_map(cast(SqlType::Varchar)),
            p(Kind::Double).prop_map(cast(SqlType::Varchar)),
            p(Kind::Dec).prop_map(cast(SqlType::Varchar)),
            p(Kind::Ts).prop_map(cast(SqlType::Varchar)),
            (
                p(Kind::Ts),
                proptest::sample::select(vec![
                    "yyyy-MM-dd",
                    "HH:mm:ss.SSS",
                    "yy/M/d h a EEE MMM D 'o''clock'",
                ])
            )
                .prop_map(|(e, f)| ScalarExpr::Call {
                    func: Func::DateFormat,
                    args: vec![e, ScalarExpr::lit(Datum::Str(f.into()), SqlType::Varchar)],
                }),
            (
                p(Kind::Str),
                proptest::sample::select(vec!["(&|^)a=([^&]*)", "a", "(x)?b", "é+", "^$"]),
                proptest::option::of(-1i64..4)
            )
                .prop_map(|(e, pattern, group)| {
                    let mut args = vec![
                        e,
                        ScalarExpr::lit(Datum::Str(pattern.into()), SqlType::Varchar),
                    ];
                    args.extend(group.map(|g| ScalarExpr::lit(Datum::Int(g), SqlType::Int)));
                    ScalarExpr::Call {
                        func: Func::RegexpExtract,
                        args,
                    }
                }),
            case_of(Kind::Str),
            coalesce_of(Kind::Str),
        ]
        .boxed();
        let date_s = prop_oneof![
            p(Kind::Date),
            (p(Kind::Date), p(Kind::Int)).prop_map(bin(BinaryOp::Add)),
            p(Kind::Ts).prop_map(cast(SqlType::Date)),
            p(Kind::Str).prop_map(cast(SqlType::Date)),
            p(Kind::Date).prop_map(call1(Func::DateTrunc(TimeUnit::Month))),
        ]
        .boxed();
        let units = proptest::sample::select(vec![
            TimeUnit::Year,
            TimeUnit::Quarter,
            TimeUnit::Month,
            TimeUnit::Week,
            TimeUnit::Day,
            TimeUnit::Hour,
            TimeUnit::Minute,
            TimeUnit::Second,
        ]);
        let ts_s = prop_oneof![
            p(Kind::Ts),
            (p(Kind::Ts), p(Kind::Interval)).prop_map(bin(BinaryOp::Add)),
            (p(Kind::Ts), p(Kind::Interval)).prop_map(bin(BinaryOp::Sub)),
            p(Kind::Date).prop_map(cast(SqlType::Timestamp)),
            (p(Kind::Ts), units.clone(), any::<bool>()).prop_map(|(e, u, ceil)| {
                ScalarExpr::Call {
                    func: if ceil {
                        Func::DateCeil(u)
                    } else {
                        Func::DateTrunc(u)
                    },
                    args: vec![e],
                }
            }),
            case_of(Kind::Ts),
        ]
        .boxed();
        let interval_s = prop_oneof![
            p(Kind::Interval),
            (p(Kind::Ts), p(Kind::Ts)).prop_map(bin(BinaryOp::Sub)),
            (p(Kind::Interval), p(Kind::BigInt)).prop_map(bin(BinaryOp::Mul)),
            (p(Kind::Interval), p(Kind::Interval)).prop_map(bin(BinaryOp::Add)),
        ]
        .boxed();
        level = vec![
            bool_s, int_s, bigint_s, double_s, dec_s, str_s, date_s, ts_s, interval_s,
        ];
    }
    level
}

fn any_expr(depth: usize) -> BoxedStrategy<ScalarExpr> {
    proptest::strategy::Union::new(expr_strategies(depth)).boxed()
}

fn same(a: &Datum, b: &Datum) -> bool {
    match (a, b) {
        (Datum::Float(x), Datum::Float(y)) => {
            (x.0.is_nan() && y.0.is_nan()) || x.0.to_bits() == y.0.to_bits()
        }
        _ => a == b,
    }
}

fn check_parity(rows: &[Row], expr: &ScalarExpr) -> Result<(), TestCaseError> {
    let batch = rows_to_batch(rows, &schema()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let ty = expr.ty(&TYPES);
    let ev = Evaluator::new(expr, &TYPES);
    let expected: Result<Vec<Datum>, _> = rows.iter().map(|r| ev.eval(r)).collect();
    let actual = CpuKernels.evaluate(expr, &batch, &TYPES);
    match (expected, actual) {
        (Err(e), Ok(_)) => {
            return Err(TestCaseError::fail(format!(
                "row evaluator failed ({e}) but the kernels succeeded for {expr:?}"
            )))
        }
        (Ok(_), Err(e)) => {
            return Err(TestCaseError::fail(format!(
                "kernels failed ({e}) but the row evaluator succeeded for {expr:?}"
            )))
        }
        (Err(_), Err(e)) => {
            prop_assert!(
                matches!(e, sluice_columnar::KernelError::Execution(_)),
                "not an execution error: {e:?}"
            );
        }
        (Ok(want), Ok(got)) => {
            prop_assert_eq!(got.len(), rows.len());
            prop_assert_eq!(got.data_type(), &ty.to_arrow());
            for (i, w) in want.iter().enumerate() {
                let g = array_value(&got, i, ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    same(w, &g),
                    "row {}: row {:?} vs columnar {:?} for {:?}",
                    i,
                    w,
                    g,
                    expr
                );
            }
        }
    }
    Ok(())
}

fn bool_expr(depth: usize) -> BoxedStrategy<ScalarExpr> {
    expr_strategies(depth).swap_remove(0)
}

/// `calc` (filter then project) against the row evaluator: same rows, or both fail.
fn check_calc(
    rows: &[Row],
    predicate: &ScalarExpr,
    project: &[ScalarExpr],
) -> Result<(), TestCaseError> {
    let input = schema();
    let batch = rows_to_batch(rows, &input).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let output = Schema::new(
        project
            .iter()
            .enumerate()
            .map(|(i, e)| Field::new(format!("o{i}"), e.ty(&TYPES)))
            .collect(),
    );
    let pred = Evaluator::new(predicate, &TYPES);
    let evs: Vec<Evaluator> = project.iter().map(|e| Evaluator::new(e, &TYPES)).collect();
    let expected: Result<Vec<Row>, _> = (|| {
        let mut out = Vec::new();
        for r in rows {
            if pred.eval(r)? == Datum::Bool(true) {
                out.push(evs.iter().map(|e| e.eval(r)).collect::<Result<Row, _>>()?);
            }
        }
        Ok::<_, sluice_expr::eval::EvalError>(out)
    })();
    let actual = CpuKernels.calc(Some(predicate), Some(project), &batch, &input, &output);
    match (expected, actual) {
        (Ok(want), Ok(got)) => {
            let got = batch_to_rows(&got, &output.types())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(want.len(), got.len());
            for (w, g) in want.iter().zip(&got) {
                prop_assert!(
                    w.iter().zip(g).all(|(a, b)| same(a, b)),
                    "{:?} vs {:?} for {:?} / {:?}",
                    w,
                    g,
                    predicate,
                    project
                );
            }
        }
        (Err(_), Err(_)) => {}
        (want, got) => {
            return Err(TestCaseError::fail(format!(
                "row evaluator {:?} vs kernels {:?} for {predicate:?} / {project:?}",
                want.map(|r| r.len()),
                got.map(|b| b.num_rows())
            )))
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn columnar_matches_rows(rows in rows(), expr in any_expr(2)) {
        check_parity(&rows, &expr)?;
    }

    #[test]
    fn columnar_matches_rows_deeper(rows in rows(), expr in any_expr(3)) {
        check_parity(&rows, &expr)?;
    }

    #[test]
    fn calc_matches_rows(
        rows in rows(),
        predicate in bool_expr(2),
        project in proptest::collection::vec(any_expr(2), 0..3),
    ) {
        check_calc(&rows, &predicate, &project)?;
    }

    #[test]
    fn rows_batch_round_trip(rows in rows()) {
        let batch = rows_to_batch(&rows, &schema()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(batch.num_rows(), rows.len());
        let back = batch_to_rows(&batch, &TYPES).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.len(), rows.len());
        for (a, b) in rows.iter().zip(&back) {
            prop_assert!(a.iter().zip(b).all(|(x, y)| same(x, y)), "{:?} vs {:?}", a, b);
        }
    }
}
