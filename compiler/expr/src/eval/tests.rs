//! Unit tests for the row evaluator: tables of cases per area.

use super::*;
use crate::expr::TimeUnit;
use SqlType as T;

fn dec(p: u8, s: u8) -> SqlType {
    T::Decimal {
        precision: p,
        scale: s,
    }
}
fn lit(d: Datum, t: SqlType) -> ScalarExpr {
    ScalarExpr::lit(d, t)
}
fn int(v: i64) -> ScalarExpr {
    lit(Datum::Int(v), T::Int)
}
fn big(v: i64) -> ScalarExpr {
    lit(Datum::Int(v), T::BigInt)
}
fn dbl(v: f64) -> ScalarExpr {
    lit(Datum::Float(F64(v)), T::Double)
}
fn s(v: &str) -> ScalarExpr {
    lit(Datum::Str(v.into()), T::Varchar)
}
fn b(v: bool) -> ScalarExpr {
    lit(Datum::Bool(v), T::Boolean)
}
fn null(t: SqlType) -> ScalarExpr {
    lit(Datum::Null, t)
}
fn dlit(v: i128, p: u8, sc: u8) -> ScalarExpr {
    lit(Datum::Decimal(v), dec(p, sc))
}
fn bin(op: BinaryOp, l: ScalarExpr, r: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(op, l, r)
}
fn call(func: Func, args: Vec<ScalarExpr>) -> ScalarExpr {
    ScalarExpr::Call { func, args }
}
fn ev(e: &ScalarExpr) -> Result<Datum, EvalError> {
    Evaluator::new(e, &[]).eval(&[])
}
/// Evaluate and render with the expression's type.
fn show(e: &ScalarExpr) -> String {
    match ev(e) {
        Ok(d) => format_datum(&d, e.ty(&[])),
        Err(err) => format!("ERROR: {err}"),
    }
}
fn date(s: &str) -> ScalarExpr {
    lit(parse_datum(s, T::Date).expect("date"), T::Date)
}
fn ts(s: &str) -> ScalarExpr {
    lit(
        parse_datum(s, T::Timestamp).expect("timestamp"),
        T::Timestamp,
    )
}

fn check(cases: Vec<(ScalarExpr, &str)>) {
    for (e, want) in cases {
        assert_eq!(show(&e), want, "{e:?}");
    }
}

#[test]
fn integer_arithmetic() {
    use BinaryOp::*;
    check(vec![
        (bin(Add, int(1), int(2)), "3"),
        (bin(Sub, int(1), int(2)), "-1"),
        (bin(Mul, int(6), int(7)), "42"),
        (bin(Div, int(7), int(2)), "3"),
        (bin(Div, int(-7), int(2)), "-3"),
        (bin(Mod, int(-7), int(2)), "-1"),
        (bin(Mod, int(7), int(-2)), "1"),
        (bin(Div, int(1), int(0)), "NULL"),
        (bin(Mod, int(1), int(0)), "NULL"),
        (bin(Add, int(1), null(T::Int)), "NULL"),
        (bin(Div, null(T::Int), int(0)), "NULL"),
        (bin(Add, big(i64::MAX - 1), big(1)), &i64::MAX.to_string()),
        (bin(Mod, big(i64::MIN), big(-1)), "0"),
        (bin(Mod, int(i64::from(i32::MIN)), int(-1)), "0"),
    ]);
    for e in [
        bin(Add, int(i64::from(i32::MAX)), int(1)),
        bin(Sub, int(i64::from(i32::MIN)), int(1)),
        bin(Mul, int(65536), int(65536)),
        bin(Div, int(i64::from(i32::MIN)), int(-1)),
        bin(Add, big(i64::MAX), big(1)),
        bin(Mul, big(i64::MAX), big(2)),
        bin(Div, big(i64::MIN), big(-1)),
        ScalarExpr::Negate(Box::new(int(i64::from(i32::MIN)))),
        ScalarExpr::Negate(Box::new(big(i64::MIN))),
    ] {
        assert!(ev(&e).is_err(), "expected overflow: {e:?}");
    }
    // INT addition that fits a BIGINT but not an INT is an error, as BIGINT it is fine.
    assert_eq!(
        ev(&bin(Add, big(i64::from(i32::MAX)), big(1))),
        Ok(Datum::Int(i64::from(i32::MAX) + 1))
    );
}

#[test]
fn double_arithmetic() {
    use BinaryOp::*;
    check(vec![
        (bin(Add, dbl(0.1), dbl(0.2)), "0.30000000000000004"),
        (bin(Div, dbl(1.0), dbl(4.0)), "0.25"),
        (bin(Mul, dbl(1.5), dbl(2.0)), "3.0"),
        (bin(Div, dbl(1.0), dbl(0.0)), "NULL"),
        (bin(Mod, dbl(5.5), dbl(2.0)), "1.5"),
        (bin(Mul, dbl(1e300), dbl(1e300)), "inf"),
        (bin(Sub, dbl(f64::INFINITY), dbl(f64::INFINITY)), "nan"),
        (ScalarExpr::Negate(Box::new(dbl(2.5))), "-2.5"),
    ]);
}

#[test]
fn decimal_arithmetic() {
    use BinaryOp::*;
    check(vec![
        // 1.50 + 2.125 = 3.625 (scale 3)
        (bin(Add, dlit(150, 5, 2), dlit(2125, 6, 3)), "3.625"),
        (bin(Sub, dlit(150, 5, 2), dlit(2125, 6, 3)), "-0.625"),
        // 1.5 * 0.25 = 0.375 (scale 1 + 2)
        (bin(Mul, dlit(15, 3, 1), dlit(25, 3, 2)), "0.375"),
        (bin(Div, dlit(10, 3, 1), dlit(4, 3, 0)), "0.25"),
        (bin(Div, dlit(10, 3, 1), dlit(0, 3, 0)), "NULL"),
        (bin(Mod, dlit(75, 3, 1), dlit(2, 3, 0)), "1.5"),
        (bin(Mod, dlit(75, 3, 1), dlit(0, 3, 0)), "NULL"),
        (ScalarExpr::Negate(Box::new(dlit(1250, 5, 2))), "-12.50"),
        (bin(Add, dlit(1, 38, 0), null(dec(38, 0))), "NULL"),
    ]);
    let max38 = 10i128.pow(38) - 1;
    assert!(ev(&bin(Add, dlit(max38, 38, 0), dlit(1, 38, 0))).is_err());
    assert!(ev(&bin(Mul, dlit(max38, 38, 0), dlit(10, 38, 0))).is_err());
    // (9, 2) * (9, 2) -> (18, 4): 9999999.99^2 does not fit 18 digits.
    assert!(ev(&bin(Mul, dlit(999_999_999, 9, 2), dlit(999_999_999, 9, 2))).is_ok());
}

#[test]
fn comparisons() {
    use BinaryOp::*;
    check(vec![
        (bin(Eq, int(1), int(1)), "true"),
        (bin(NotEq, int(1), int(1)), "false"),
        (bin(Lt, int(1), int(2)), "true"),
        (bin(LtEq, int(2), int(2)), "true"),
        (bin(Gt, int(1), int(2)), "false"),
        (bin(GtEq, int(1), null(T::Int)), "NULL"),
        // 1.50 = 1.5
        (bin(Eq, dlit(150, 5, 2), dlit(15, 5, 1)), "true"),
        (bin(Lt, dlit(-151, 5, 2), dlit(-15, 5, 1)), "true"),
        (bin(Gt, dlit(1, 5, 0), dlit(999, 5, 3)), "true"),
        (bin(Eq, dbl(0.0), dbl(-0.0)), "true"),
        (bin(Eq, dbl(f64::NAN), dbl(f64::NAN)), "true"),
        (bin(Gt, dbl(f64::NAN), dbl(f64::INFINITY)), "true"),
        (bin(Lt, s("B"), s("a")), "true"),
        (bin(Lt, s("a"), s("ab")), "true"),
        (bin(Lt, b(false), b(true)), "true"),
        (bin(Lt, date("2020-01-01"), date("2020-01-02")), "true"),
    ]);
}

#[test]
fn kleene_logic() {
    use BinaryOp::*;
    let n = || null(T::Boolean);
    check(vec![
        (bin(And, b(true), b(true)), "true"),
        (bin(And, b(true), n()), "NULL"),
        (bin(And, n(), b(false)), "false"),
        (bin(And, b(false), n()), "false"),
        (bin(And, n(), n()), "NULL"),
        (bin(Or, b(false), n()), "NULL"),
        (bin(Or, n(), b(true)), "true"),
        (bin(Or, b(false), b(false)), "false"),
        (ScalarExpr::Not(Box::new(n())), "NULL"),
        (ScalarExpr::Not(Box::new(b(true))), "false"),
        (
            ScalarExpr::IsNull {
                expr: Box::new(n()),
                negated: false,
            },
            "true",
        ),
        (
            ScalarExpr::IsNull {
                expr: Box::new(int(1)),
                negated: true,
            },
            "true",
        ),
    ]);
    // Short circuit: the erroring side is not evaluated.
    let boom = bin(Eq, bin(Add, big(i64::MAX), big(1)), big(0));
    assert_eq!(
        ev(&bin(And, b(false), boom.clone())),
        Ok(Datum::Bool(false))
    );
    assert_eq!(ev(&bin(Or, b(true), boom.clone())), Ok(Datum::Bool(true)));
    assert!(ev(&bin(And, b(true), boom)).is_err());
}

#[test]
fn case_coalesce_in() {
    let case = ScalarExpr::Case {
        whens: vec![
            (null(T::Boolean), s("a")),
            (b(false), s("b")),
            (b(true), s("c")),
        ],
        else_: Some(Box::new(s("d"))),
    };
    let no_else = ScalarExpr::Case {
        whens: vec![(b(false), int(1))],
        else_: None,
    };
    let lazy = ScalarExpr::Case {
        whens: vec![(b(false), bin(BinaryOp::Add, big(i64::MAX), big(1)))],
        else_: Some(Box::new(big(0))),
    };
    let inl = |e: ScalarExpr, list: Vec<ScalarExpr>, negated| ScalarExpr::InList {
        expr: Box::new(e),
        list,
        negated,
    };
    check(vec![
        (case, "c"),
        (no_else, "NULL"),
        (lazy, "0"),
        (
            ScalarExpr::Coalesce(vec![null(T::Int), int(2), int(3)]),
            "2",
        ),
        (ScalarExpr::Coalesce(vec![null(T::Int)]), "NULL"),
        (inl(int(1), vec![int(1), int(2)], false), "true"),
        (inl(int(3), vec![int(1), int(2)], false), "false"),
        (inl(int(3), vec![int(1), null(T::Int)], false), "NULL"),
        (inl(int(1), vec![int(1), null(T::Int)], false), "true"),
        (inl(null(T::Int), vec![int(1)], false), "NULL"),
        (inl(int(3), vec![int(1), int(2)], true), "true"),
        (inl(int(1), vec![int(1), int(2)], true), "false"),
        (inl(int(3), vec![int(1), null(T::Int)], true), "NULL"),
        (inl(dlit(10, 3, 1), vec![dlit(100, 4, 2)], false), "true"),
    ]);
}

#[test]
fn like() {
    let like = |e: ScalarExpr, p: ScalarExpr, negated, ci| ScalarExpr::Like {
        expr: Box::new(e),
        pattern: Box::new(p),
        negated,
        case_insensitive: ci,
    };
    check(vec![
        (like(s("hello"), s("h%o"), false, false), "true"),
        (like(s("hello"), s("H%"), false, false), "false"),
        (like(s("hello"), s("H%"), false, true), "true"),
        (like(s("hello"), s("h%o"), true, false), "false"),
        (like(null(T::Varchar), s("%"), false, false), "NULL"),
        (like(s("a"), null(T::Varchar), false, false), "NULL"),
        (like(s("a%"), s("a\\%"), false, false), "true"),
    ]);
    assert!(ev(&like(s("a"), s("a\\"), false, false)).is_err());
    // A column pattern is compiled per row.
    let e = like(ScalarExpr::col(0), ScalarExpr::col(1), false, false);
    let ev = Evaluator::new(&e, &[T::Varchar, T::Varchar]);
    assert_eq!(
        ev.eval(&[Datum::Str("abc".into()), Datum::Str("_b_".into())]),
        Ok(Datum::Bool(true))
    );
}

#[test]
fn casts() {
    let cast = |e: ScalarExpr, to| ScalarExpr::Cast {
        expr: Box::new(e),
        to,
    };
    check(vec![
        (cast(dbl(2.5), T::Int), "2"),
        (cast(dbl(3.9), T::Int), "3"),
        (cast(dbl(-2.7), T::BigInt), "-2"),
        (cast(int(42), T::Double), "42.0"),
        (cast(int(42), dec(5, 2)), "42.00"),
        (cast(dlit(1250, 5, 2), dec(5, 1)), "12.5"),
        (cast(dlit(1255, 5, 2), dec(5, 1)), "12.6"),
        (cast(dlit(-1255, 5, 2), dec(5, 1)), "-12.6"),
        (cast(dlit(125, 5, 1), T::Int), "13"),
        (cast(dlit(-125, 5, 1), T::Int), "-13"),
        (cast(dlit(124, 5, 1), T::Int), "12"),
        (cast(dlit(125, 5, 2), T::Double), "1.25"),
        (
            cast(dlit(12345678901234567890123, 38, 20), T::Double),
            "123.45678901234568",
        ),
        (cast(dbl(1.005), dec(5, 2)), "1.00"),
        (cast(dbl(0.125), dec(5, 2)), "0.12"),
        (cast(s(" 42 "), T::Int), "42"),
        (cast(s("1.255"), dec(5, 2)), "1.26"),
        (cast(s("-1.255"), dec(5, 2)), "-1.26"),
        (cast(s("1e2"), dec(5, 1)), "100.0"),
        (cast(s("TRUE"), T::Boolean), "true"),
        (cast(s("0"), T::Boolean), "false"),
        (cast(s("2024-02-29"), T::Date), "2024-02-29"),
        (
            cast(s("2024-02-29 13:14:15.5"), T::Timestamp),
            "2024-02-29 13:14:15.500",
        ),
        (
            cast(s("2024-02-29T13:14:15"), T::Timestamp),
            "2024-02-29 13:14:15.000",
        ),
        (
            cast(date("2024-02-29"), T::Timestamp),
            "2024-02-29 00:00:00.000",
        ),
        (cast(ts("1969-12-31 23:59:59"), T::Date), "1969-12-31"),
        (cast(b(true), T::Int), "1"),
        (cast(int(0), T::Boolean), "false"),
        (cast(dlit(1250, 5, 2), T::Varchar), "12.50"),
        (cast(dbl(3.0), T::Varchar), "3.0"),
        (cast(null(T::Varchar), T::Int), "NULL"),
    ]);
    for e in [
        cast(s("abc"), T::Int),
        cast(s("2147483648"), T::Int),
        cast(s("2024-02-30"), T::Date),
        cast(s("maybe"), T::Boolean),
        cast(dbl(f64::NAN), T::Int),
        cast(dbl(3e9), T::Int),
        cast(dbl(1e19), T::BigInt),
        cast(big(1 << 40), T::Int),
        cast(int(1000), dec(4, 2)),
        cast(dlit(99999, 5, 0), dec(5, 2)),
        cast(dbl(1000.0), dec(4, 1)),
    ] {
        let err = ev(&e).expect_err("cast should fail");
        assert!(!err.message.is_empty());
    }
    let err = ev(&cast(s("abc"), T::Int)).expect_err("bad int");
    assert!(
        err.message.contains("'abc'") && err.message.contains("INT"),
        "{err}"
    );
}

#[test]
fn parse_and_format() {
    let cases: &[(&str, SqlType, &str)] = &[
        ("-12", T::BigInt, "-12"),
        ("+7", T::Int, "7"),
        ("1.5", T::Double, "1.5"),
        ("1e20", T::Double, "100000000000000000000.0"),
        ("0.005", dec(5, 2), "0.01"),
        ("-0.004", dec(5, 2), "0.00"),
        (".5", dec(3, 1), "0.5"),
        ("12", dec(4, 2), "12.00"),
        ("f", T::Boolean, "false"),
        (
            "2020-01-01 00:00:00.1239",
            T::Timestamp,
            "2020-01-01 00:00:00.123",
        ),
        (
            "1969-07-20 20:17:40",
            T::Timestamp,
            "1969-07-20 20:17:40.000",
        ),
        ("2020-01-01", T::Timestamp, "2020-01-01 00:00:00.000"),
        ("90061001", T::Interval, "1 day 01:01:01.001"),
        ("-01:00:00", T::Interval, "-01:00:00"),
        ("25:00:00.5", T::Interval, "1 day 01:00:00.5"),
        ("172800000", T::Interval, "2 days"),
        ("-90000000", T::Interval, "-1 day -01:00:00"),
        ("0", T::Interval, "00:00:00"),
        ("00:00:01.120", T::Interval, "00:00:01.12"),
        ("text ", T::Varchar, "text "),
    ];
    for (text, ty, want) in cases {
        let d = parse_datum(text, *ty).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(format_datum(&d, *ty), *want, "{text} as {ty}");
    }
    for (text, ty) in [
        ("", T::Int),
        ("1.5", T::Int),
        ("x", T::Double),
        ("1.2.3", dec(5, 2)),
        ("1000", dec(4, 2)),
        ("2020-13-01", T::Date),
        ("2020-01-01 25:00:00", T::Timestamp),
        ("yes please", T::Boolean),
    ] {
        assert!(parse_datum(text, ty).is_err(), "{text} as {ty}");
    }
    assert_eq!(format_datum(&Datum::Null, T::Int), "NULL");
    assert_eq!(format_datum(&Datum::Decimal(-5), dec(3, 2)), "-0.05");
    assert_eq!(format_datum(&Datum::Decimal(5), dec(3, 0)), "5");
    assert_eq!(format_datum(&Datum::Float(F64(-0.5)), T::Double), "-0.5");
    assert_eq!(format_datum(&Datum::Date(0), T::Date), "1970-01-01");
}

#[test]
fn string_functions() {
    use Func::*;
    check(vec![
        (call(Upper, vec![s("abcß")]), "ABCß"),
        (call(Upper, vec![s("éa")]), "ÉA"),
        (call(Lower, vec![s("ÀB")]), "àb"),
        (call(Lower, vec![s("İx")]), "İx"),
        (call(Substring, vec![s("hello"), big(2), big(3)]), "ell"),
        (call(Substring, vec![s("hello"), big(0), big(3)]), "he"),
        (call(Substring, vec![s("hello"), big(-2), big(2)]), "lo"),
        (call(Substring, vec![s("hello"), big(2)]), "ello"),
        (call(Substring, vec![s("hello"), big(10)]), ""),
        (call(Substring, vec![s("héllo"), big(2), big(2)]), "él"),
        (call(Substring, vec![s("hello"), big(3), big(-2)]), "he"),
        (call(Substring, vec![s("hello"), null(T::BigInt)]), "NULL"),
        (call(CharLength, vec![s("héllo")]), "5"),
        (
            call(Func::Concat, vec![s("a"), null(T::Varchar), s("b")]),
            "NULL",
        ),
        (call(Func::Concat, vec![s("a"), s("b"), s("c")]), "abc"),
        (call(Trim, vec![s("  a b  ")]), "a b"),
        (call(LTrim, vec![s("  a  ")]), "a  "),
        (call(RTrim, vec![s("  a  ")]), "  a"),
        (call(Trim, vec![s("xxaxyx"), s("xy")]), "a"),
        (
            call(Replace, vec![s("abcabc"), s("b"), s("XX")]),
            "aXXcaXXc",
        ),
        (call(Replace, vec![s("abc"), s(""), s("X")]), "abc"),
        (call(Position, vec![s("l"), s("héllo")]), "3"),
        (call(Position, vec![s("z"), s("hello")]), "0"),
        (call(Position, vec![s(""), s("hello")]), "1"),
        (bin(BinaryOp::Concat, s("a"), null(T::Varchar)), "NULL"),
        (bin(BinaryOp::Concat, s("a"), s("b")), "ab"),
    ]);
}

#[test]
fn numeric_functions() {
    use Func::*;
    check(vec![
        (call(Abs, vec![int(-3)]), "3"),
        (call(Abs, vec![dbl(-2.5)]), "2.5"),
        (call(Abs, vec![dlit(-1250, 5, 2)]), "12.50"),
        (call(Round, vec![dbl(2.5)]), "3.0"),
        (call(Round, vec![dbl(-2.5)]), "-3.0"),
        (call(Round, vec![dbl(1.2345), int(2)]), "1.23"),
        (call(Round, vec![dbl(1234.5), int(-2)]), "1200.0"),
        (call(Round, vec![dlit(1255, 5, 2), int(1)]), "12.60"),
        (call(Round, vec![dlit(-1255, 5, 2), int(1)]), "-12.60"),
        (call(Round, vec![dlit(1255, 5, 2), int(5)]), "12.55"),
        (call(Round, vec![int(1250), int(-2)]), "1300"),
        (call(Round, vec![int(-1250), int(-2)]), "-1300"),
        (call(Round, vec![int(17), int(1)]), "17"),
        (call(Floor, vec![dbl(-1.5)]), "-2.0"),
        (call(Ceil, vec![dbl(-1.5)]), "-1.0"),
        (call(Floor, vec![dlit(-125, 5, 2)]), "-2"),
        (call(Ceil, vec![dlit(-125, 5, 2)]), "-1"),
        (call(Ceil, vec![dlit(125, 5, 2)]), "2"),
        (call(Floor, vec![int(7)]), "7"),
        (call(Power, vec![dbl(2.0), dbl(10.0)]), "1024.0"),
        (call(Sqrt, vec![dbl(16.0)]), "4.0"),
        (call(Ln, vec![dbl(1.0)]), "0.0"),
        (call(Exp, vec![dbl(0.0)]), "1.0"),
        (call(Sqrt, vec![null(T::Double)]), "NULL"),
    ]);
    assert!(ev(&call(Sqrt, vec![dbl(-1.0)])).is_err());
    assert!(ev(&call(Ln, vec![dbl(0.0)])).is_err());
    assert!(ev(&call(Abs, vec![int(i64::from(i32::MIN))])).is_err());
    assert_eq!(
        call(Floor, vec![dlit(-125, 5, 2)]).ty(&[]),
        dec(5, 0),
        "FLOOR of a DECIMAL has scale 0"
    );
}

#[test]
fn temporal() {
    use BinaryOp::*;
    use TimeUnit::*;
    let ex = |u, e| call(Func::Extract(u), vec![e]);
    let t = || ts("2024-02-29 13:14:15.678");
    check(vec![
        (ex(Year, t()), "2024"),
        (ex(Quarter, t()), "1"),
        (ex(Month, t()), "2"),
        (ex(Week, t()), "9"),
        (ex(Week, date("2021-01-01")), "53"),
        (ex(Day, t()), "29"),
        (ex(DayOfWeek, t()), "4"),
        (ex(DayOfWeek, date("2024-03-03")), "0"),
        (ex(DayOfYear, t()), "60"),
        (ex(Hour, t()), "13"),
        (ex(Minute, t()), "14"),
        (ex(Second, t()), "15"),
        (ex(Millisecond, t()), "15678"),
        (ex(Epoch, ts("1970-01-02 00:00:01.999")), "86401"),
        (ex(Epoch, date("1970-01-02")), "86400"),
        (ex(Hour, date("2024-01-01")), "0"),
        (ex(Hour, ts("1969-12-31 23:00:00")), "23"),
    ]);
    let tr = |u, e| call(Func::DateTrunc(u), vec![e]);
    let ce = |u, e| call(Func::DateCeil(u), vec![e]);
    check(vec![
        (tr(Year, t()), "2024-01-01 00:00:00.000"),
        (
            tr(Quarter, ts("2024-05-05 01:00:00")),
            "2024-04-01 00:00:00.000",
        ),
        (tr(Month, t()), "2024-02-01 00:00:00.000"),
        (tr(Week, t()), "2024-02-26 00:00:00.000"),
        (tr(Day, t()), "2024-02-29 00:00:00.000"),
        (tr(Hour, t()), "2024-02-29 13:00:00.000"),
        (tr(Minute, t()), "2024-02-29 13:14:00.000"),
        (tr(Second, t()), "2024-02-29 13:14:15.000"),
        (tr(Millisecond, t()), "2024-02-29 13:14:15.678"),
        (
            tr(Hour, ts("1969-12-31 23:30:00")),
            "1969-12-31 23:00:00.000",
        ),
        (tr(Month, date("2024-02-29")), "2024-02-01"),
        (tr(Hour, date("2024-02-29")), "2024-02-29"),
        (ce(Year, t()), "2025-01-01 00:00:00.000"),
        (
            ce(Year, ts("2024-01-01 00:00:00")),
            "2024-01-01 00:00:00.000",
        ),
        (ce(Quarter, t()), "2024-04-01 00:00:00.000"),
        (ce(Month, t()), "2024-03-01 00:00:00.000"),
        (ce(Week, t()), "2024-03-04 00:00:00.000"),
        (ce(Day, t()), "2024-03-01 00:00:00.000"),
        (ce(Hour, t()), "2024-02-29 14:00:00.000"),
        (ce(Minute, t()), "2024-02-29 13:15:00.000"),
        (ce(Second, t()), "2024-02-29 13:14:16.000"),
        (ce(Month, date("2024-02-01")), "2024-02-01"),
        (ce(Month, date("2024-02-02")), "2024-03-01"),
        (tr(Day, null(T::Timestamp)), "NULL"),
    ]);
    let iv = |ms| lit(Datum::Interval(ms), T::Interval);
    check(vec![
        (bin(Add, t(), iv(1000)), "2024-02-29 13:14:16.678"),
        (bin(Add, iv(-1000), t()), "2024-02-29 13:14:14.678"),
        (bin(Sub, t(), iv(86_400_000)), "2024-02-28 13:14:15.678"),
        (
            bin(Sub, ts("2024-01-02"), ts("2024-01-01 12:00:00")),
            "12:00:00",
        ),
        (bin(Add, date("2024-02-28"), int(2)), "2024-03-01"),
        (bin(Add, big(1), date("2024-02-28")), "2024-02-29"),
        (bin(Sub, date("2024-03-01"), int(1)), "2024-02-29"),
        (bin(Sub, date("2024-03-01"), date("2024-02-01")), "29"),
        (bin(Add, iv(1000), iv(500)), "00:00:01.5"),
        (bin(Mul, iv(1000), big(3)), "00:00:03"),
        (bin(Add, t(), null(T::Interval)), "NULL"),
    ]);
    assert!(ev(&bin(
        Add,
        lit(Datum::Timestamp(i64::MAX), T::Timestamp),
        iv(1)
    ))
    .is_err());
}

#[test]
fn column_references() {
    let e = bin(BinaryOp::Add, ScalarExpr::col(0), ScalarExpr::col(1));
    let ev = Evaluator::new(&e, &[T::BigInt, T::BigInt]);
    assert_eq!(ev.eval(&[Datum::Int(1), Datum::Int(2)]), Ok(Datum::Int(3)));
    assert_eq!(ev.eval(&[Datum::Null, Datum::Int(2)]), Ok(Datum::Null));
    assert!(
        ev.eval(&[Datum::Int(1)]).is_err(),
        "short row is an error, not a panic"
    );
    // Malformed calls (binder bugs) are errors too.
    for func in [
        Func::Abs,
        Func::Round,
        Func::Power,
        Func::Sqrt,
        Func::Extract(TimeUnit::Year),
    ] {
        assert!(self::ev(&call(func, vec![])).is_err(), "{func:?}()");
    }
    assert!(self::ev(&call(Func::Power, vec![dbl(1.0)])).is_err());
}

mod round_trip {
    //! `parse_datum(format_datum(d))` gives `d` back (CSV output read back, CAST to
    //! VARCHAR and back).
    use super::*;
    use proptest::prelude::*;

    fn datum_of(ty: SqlType) -> BoxedStrategy<Datum> {
        match ty {
            T::Boolean => any::<bool>().prop_map(Datum::Bool).boxed(),
            T::Int => any::<i32>().prop_map(|v| Datum::Int(i64::from(v))).boxed(),
            T::BigInt => any::<i64>().prop_map(Datum::Int).boxed(),
            T::Double => any::<f64>().prop_map(|v| Datum::Float(F64(v))).boxed(),
            T::Decimal { precision, .. } => {
                let max = 10i128.pow(u32::from(precision)) - 1;
                (-max..=max).prop_map(Datum::Decimal).boxed()
            }
            T::Varchar => ".*".prop_map(Datum::Str).boxed(),
            // Years 0001 to 9999.
            T::Date => (-719_162i32..2_932_896).prop_map(Datum::Date).boxed(),
            T::Timestamp => (-62_135_596_800_000i64..253_402_300_799_999)
                .prop_map(Datum::Timestamp)
                .boxed(),
            T::Interval => (-10_000_000_000_000i64..10_000_000_000_000)
                .prop_map(Datum::Interval)
                .boxed(),
            T::Null => Just(Datum::Null).boxed(),
        }
    }

    fn typed() -> impl Strategy<Value = (SqlType, Datum)> {
        proptest::sample::select(vec![
            T::Boolean,
            T::Int,
            T::BigInt,
            T::Double,
            dec(38, 0),
            dec(38, 10),
            dec(10, 2),
            dec(5, 5),
            T::Varchar,
            T::Date,
            T::Timestamp,
            T::Interval,
        ])
        .prop_flat_map(|ty| datum_of(ty).prop_map(move |d| (ty, d)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn parse_of_format_is_identity((ty, d) in typed()) {
            let text = format_datum(&d, ty);
            let back = parse_datum(&text, ty).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            match (&d, &back) {
                (Datum::Float(a), Datum::Float(b)) => prop_assert!(
                    (a.0.is_nan() && b.0.is_nan()) || a.0.to_bits() == b.0.to_bits(),
                    "{:?} -> {} -> {:?}", a, text, b
                ),
                _ => prop_assert_eq!(&d, &back, "via {:?}", text),
            }
            // CAST to VARCHAR and back is the same round trip.
            let s = cast_datum(&d, ty, T::Varchar).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&s, &Datum::Str(text));
        }
    }
}

#[test]
fn evaluator_is_shareable_across_workers() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Evaluator>();
    assert_send_sync::<LikePattern>();
}

#[test]
fn date_format_and_regexp_extract() {
    use Func::*;
    check(vec![
        (
            call(
                DateFormat,
                vec![ts("2026-12-04 09:05:07.042"), s("yyyy-MM-dd")],
            ),
            "2026-12-04",
        ),
        (
            call(DateFormat, vec![ts("2026-12-04 09:05:07.042"), s("HH:mm")]),
            "09:05",
        ),
        (
            call(
                DateFormat,
                vec![
                    ts("2026-12-04 21:05:07.042"),
                    s("yy/M/d h:m:s.SSS a EEE MMM D 'o''clock'"),
                ],
            ),
            "26/12/4 9:5:7.042 PM Fri Dec 338 o'clock",
        ),
        (
            call(
                DateFormat,
                vec![ts("2026-01-01 00:00:00"), s("EEEE MMMM u S")],
            ),
            "Thursday January 4 0",
        ),
        (
            call(DateFormat, vec![null(T::Timestamp), s("yyyy")]),
            "NULL",
        ),
        (
            call(
                RegexpExtract,
                vec![
                    s("https://x.com/item?a=1&channel_id=42&b=2"),
                    s("(&|^)channel_id=([^&]*)"),
                    big(2),
                ],
            ),
            "42",
        ),
        (
            call(
                RegexpExtract,
                vec![s("channel_id=7"), s("(&|^)channel_id=([^&]*)"), big(2)],
            ),
            "7",
        ),
        (
            call(
                RegexpExtract,
                vec![s("no id here"), s("(&|^)channel_id=([^&]*)"), big(2)],
            ),
            "NULL",
        ),
        (call(RegexpExtract, vec![s("abc"), s("b(x)?")]), "b"),
        (
            call(RegexpExtract, vec![s("abc"), s("b(x)?"), big(1)]),
            "NULL",
        ),
        (call(RegexpExtract, vec![s("abc"), s("b"), big(5)]), "NULL"),
        (
            call(
                SplitIndex,
                vec![s("https://www.nexmark.com/a/b/item.htm"), s("/"), big(3)],
            ),
            "a",
        ),
        (call(SplitIndex, vec![s("a//b"), s("/"), big(1)]), ""),
        (call(SplitIndex, vec![s("a::b::c"), s("::"), big(2)]), "c"),
        (call(SplitIndex, vec![s("a/b"), s("/"), big(2)]), "NULL"),
        (call(SplitIndex, vec![s("a/b"), s("/"), big(-1)]), "NULL"),
        (call(SplitIndex, vec![s("a b"), s(""), big(1)]), "b"),
    ]);
    // A pattern known only at run time that does not compile is an error, as data.
    let bad = call(RegexpExtract, vec![s("abc"), s("(")]);
    assert!(ev(&bad).is_err());
}
