//! Bound scalar expressions ([`ScalarExpr`]) and aggregate calls ([`AggregateCall`],
//! each keeping its state as its [`AggStrategy`] says).
//!
//! Expressions are bound: columns are positions in the input row of the plan node
//! that holds the expression, and every operand has already been coerced by the binder
//! so that the rules in [`ScalarExpr::ty`] hold. Two evaluators implement the
//! semantics: the row evaluator [`crate::eval`] (constant folding, row-at-a-time
//! stages) and the columnar one in `sluice-gpu` (batch stages). They must agree; a
//! property test in `sluice-gpu` checks that they do.

use crate::datum::Datum;
use serde::{Deserialize, Serialize};
use sluice_catalogs::SqlType;

/// Binary operators. Operand types after binding:
/// - `Add/Sub/Mul/Div/Mod`: both integer of the same type, both DOUBLE, or both DECIMAL
///   (any precision/scale); or temporal: `TIMESTAMP ± INTERVAL`, `TIMESTAMP - TIMESTAMP`,
///   `DATE ± INT`, `DATE - DATE`, `INTERVAL ± INTERVAL`, `INTERVAL * BIGINT`.
/// - comparisons: both operands of the same type (DECIMALs may differ in scale).
/// - `And/Or`: BOOLEAN (three-valued logic).
/// - `Concat` (`||`): VARCHAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (the binder casts integer operands to DOUBLE, as DuckDB; division by zero is NULL)
    Div,
    /// `%` / `MOD` (sign of the dividend; modulo zero is NULL)
    Mod,
    /// `=`
    Eq,
    /// `<>` / `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND` (Kleene)
    And,
    /// `OR` (Kleene)
    Or,
    /// `||` string concatenation (NULL if either side is NULL)
    Concat,
}

impl BinaryOp {
    /// The SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        }
    }

    /// True for `= <> < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

/// Date/time fields for `EXTRACT` and `DATE_TRUNC` / `FLOOR(ts TO unit)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeUnit {
    /// Calendar year.
    Year,
    /// Quarter of the year (1-4).
    Quarter,
    /// Month (1-12).
    Month,
    /// ISO week (DATE_TRUNC truncates to Monday).
    Week,
    /// Day of month.
    Day,
    /// Day of week, Sunday = 0 (EXTRACT only, as DuckDB's `dow`).
    DayOfWeek,
    /// Day of year, 1-366 (EXTRACT only).
    DayOfYear,
    /// Hour (0-23).
    Hour,
    /// Minute (0-59).
    Minute,
    /// Second (0-59; EXTRACT returns whole seconds).
    Second,
    /// Milliseconds within the minute, seconds included (as DuckDB's `millisecond`).
    Millisecond,
    /// Seconds since 1970-01-01 (EXTRACT only).
    Epoch,
}

/// Scalar functions. Argument types are coerced by the binder; return types in
/// [`Func::return_type`]. Every function returns NULL when any argument is NULL
/// (`CONCAT` included, as in Flink).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Func {
    /// `UPPER(s)`
    Upper,
    /// `LOWER(s)`
    Lower,
    /// `SUBSTRING(s FROM start [FOR len])`, 1-based, in characters; args `(s, start[, len])` (BIGINT).
    Substring,
    /// `CHAR_LENGTH(s)` / `LENGTH(s)`: characters, BIGINT.
    CharLength,
    /// `CONCAT(a, b, ...)`: NULL when any argument is NULL (Flink).
    Concat,
    /// `TRIM(BOTH ' ' FROM s)`; args `(s[, chars])`.
    Trim,
    /// `LTRIM(s)` / `TRIM(LEADING …)`; args `(s[, chars])`.
    LTrim,
    /// `RTRIM(s)` / `TRIM(TRAILING …)`; args `(s[, chars])`.
    RTrim,
    /// `REPLACE(s, from, to)`
    Replace,
    /// `POSITION(needle IN s)`: 1-based, 0 when absent; args `(needle, s)`; BIGINT.
    Position,
    /// `ABS(x)`: same type.
    Abs,
    /// `ROUND(x[, digits])`: half away from zero; same type as `x` (DECIMAL keeps its scale).
    Round,
    /// `FLOOR(x)`: integers and DOUBLE keep their type; DECIMAL(p,s) → DECIMAL(p,0).
    Floor,
    /// `CEIL(x)` / `CEILING(x)`: as `Floor`.
    Ceil,
    /// `POWER(x, y)`: DOUBLE.
    Power,
    /// `SQRT(x)`: DOUBLE.
    Sqrt,
    /// `LN(x)`: DOUBLE.
    Ln,
    /// `EXP(x)`: DOUBLE.
    Exp,
    /// `EXTRACT(unit FROM t)` for DATE or TIMESTAMP: BIGINT.
    Extract(TimeUnit),
    /// `DATE_TRUNC('unit', t)` / `FLOOR(t TO unit)`: same type as `t`.
    DateTrunc(TimeUnit),
    /// `CEIL(t TO unit)`: same type as `t`.
    DateCeil(TimeUnit),
    /// `DATE_FORMAT(t, pattern)`: TIMESTAMP `t` spelled in a Java date-time pattern
    /// (`'yyyy-MM-dd HH:mm'`, as Flink's), VARCHAR; see [`crate::temporal::format_java`].
    DateFormat,
    /// `REGEXP_EXTRACT(s, regex[, group])`: the text of capture group `group` (default 0,
    /// the whole match) of the first match of `regex` in `s`, VARCHAR; NULL when nothing
    /// matches or the group did not take part in the match (Flink's semantics).
    RegexpExtract,
    /// `SPLIT_INDEX(s, delimiter, i)`: field `i` (0-based) of `s` split at every
    /// `delimiter`, VARCHAR; NULL when `i` is negative or past the last field (Flink's).
    SplitIndex,
    /// `PROCTIME()`: the processing time (wall clock, ms) at which the row is
    /// evaluated, TIMESTAMP(3); no arguments. Not deterministic: never constant-folded
    /// (see [`ScalarExpr::is_deterministic`]).
    ProcTime,
}

impl Func {
    /// The function's SQL name as EXPLAIN prints it.
    pub fn name(self) -> String {
        match self {
            Func::Extract(u) => format!("EXTRACT_{u:?}").to_uppercase(),
            Func::DateTrunc(u) => format!("DATE_TRUNC_{u:?}").to_uppercase(),
            Func::DateCeil(u) => format!("DATE_CEIL_{u:?}").to_uppercase(),
            other => format!("{other:?}").to_uppercase(),
        }
    }

    /// The return type for these (already coerced) argument types.
    pub fn return_type(self, args: &[SqlType]) -> SqlType {
        let first = args.first().copied().unwrap_or(SqlType::Null);
        match self {
            Func::Upper | Func::Lower | Func::Substring | Func::Concat => SqlType::Varchar,
            Func::Trim | Func::LTrim | Func::RTrim | Func::Replace => SqlType::Varchar,
            Func::DateFormat | Func::RegexpExtract | Func::SplitIndex => SqlType::Varchar,
            Func::CharLength | Func::Position | Func::Extract(_) => SqlType::BigInt,
            Func::Abs | Func::Round => first,
            Func::Floor | Func::Ceil => match first {
                SqlType::Decimal { precision, .. } => SqlType::Decimal {
                    precision,
                    scale: 0,
                },
                t => t,
            },
            Func::Power | Func::Sqrt | Func::Ln | Func::Exp => SqlType::Double,
            Func::DateTrunc(_) | Func::DateCeil(_) => first,
            Func::ProcTime => SqlType::Timestamp,
        }
    }

    /// False for functions whose value depends on when they are evaluated.
    pub fn is_deterministic(self) -> bool {
        !matches!(self, Func::ProcTime)
    }
}

/// A bound, typed scalar expression over the columns of one input row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScalarExpr {
    /// The input column at this position.
    Column(usize),
    /// A constant of the given type (`Datum::Null` for a typed NULL).
    Literal(Datum, SqlType),
    /// A binary operator; see [`BinaryOp`] for operand types.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<ScalarExpr>,
        /// Right operand.
        right: Box<ScalarExpr>,
    },
    /// Boolean `NOT` (NULL stays NULL).
    Not(Box<ScalarExpr>),
    /// Arithmetic negation.
    Negate(Box<ScalarExpr>),
    /// `IS NULL` (`negated`: `IS NOT NULL`); never NULL itself.
    IsNull {
        /// The tested expression.
        expr: Box<ScalarExpr>,
        /// `IS NOT NULL` when true.
        negated: bool,
    },
    /// `CAST(expr AS to)`: a failed cast is a runtime error (strings that do not parse).
    Cast {
        /// The value to convert.
        expr: Box<ScalarExpr>,
        /// The target type.
        to: SqlType,
    },
    /// Searched `CASE WHEN c THEN r … ELSE e END`; simple CASE, `NULLIF` and `IF` are
    /// bound to this form. All results have one type; a missing ELSE is NULL.
    Case {
        /// `(condition, result)` pairs, tried in order.
        whens: Vec<(ScalarExpr, ScalarExpr)>,
        /// The result when no condition is TRUE.
        else_: Option<Box<ScalarExpr>>,
    },
    /// `COALESCE(a, b, …)`: the first non-NULL argument; all of one type.
    Coalesce(Vec<ScalarExpr>),
    /// `expr [NOT] IN (list…)`, SQL semantics: NULL when no match and a NULL is involved.
    InList {
        /// The probe value.
        expr: Box<ScalarExpr>,
        /// The candidates, of the probe's type.
        list: Vec<ScalarExpr>,
        /// `NOT IN` when true.
        negated: bool,
    },
    /// `expr [NOT] LIKE pattern` (`%`, `_`, escape `\`); `ILIKE` when `case_insensitive`.
    Like {
        /// The string tested.
        expr: Box<ScalarExpr>,
        /// The pattern.
        pattern: Box<ScalarExpr>,
        /// `NOT LIKE` when true.
        negated: bool,
        /// `ILIKE` when true.
        case_insensitive: bool,
    },
    /// A scalar function call.
    Call {
        /// The function.
        func: Func,
        /// Its arguments.
        args: Vec<ScalarExpr>,
    },
}

/// The result type of an arithmetic operator on two (coerced) operand types.
pub fn arithmetic_type(op: BinaryOp, l: SqlType, r: SqlType) -> SqlType {
    use SqlType::*;
    match (op, l, r) {
        (BinaryOp::Add | BinaryOp::Sub, Timestamp, Interval) => Timestamp,
        (BinaryOp::Add, Interval, Timestamp) => Timestamp,
        (BinaryOp::Sub, Timestamp, Timestamp) => Interval,
        (BinaryOp::Add | BinaryOp::Sub, Date, Int | BigInt) => Date,
        (BinaryOp::Add, Int | BigInt, Date) => Date,
        (BinaryOp::Sub, Date, Date) => BigInt,
        (BinaryOp::Add | BinaryOp::Sub, Interval, Interval) => Interval,
        (BinaryOp::Mul, Interval, _) | (BinaryOp::Mul, _, Interval) => Interval,
        (BinaryOp::Div, Decimal { .. }, Decimal { .. }) => Double,
        (
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mod,
            Decimal {
                precision: p1,
                scale: s1,
            },
            Decimal {
                precision: p2,
                scale: s2,
            },
        ) => {
            let scale = s1.max(s2);
            let int_digits = p1.saturating_sub(s1).max(p2.saturating_sub(s2));
            Decimal {
                precision: (int_digits + scale + 1).min(38),
                scale,
            }
        }
        (
            BinaryOp::Mul,
            Decimal {
                precision: p1,
                scale: s1,
            },
            Decimal {
                precision: p2,
                scale: s2,
            },
        ) => Decimal {
            precision: (p1 + p2).min(38),
            scale: (s1 + s2).min(38),
        },
        (_, Null, t) | (_, t, Null) => t,
        (_, t, _) => t,
    }
}

impl ScalarExpr {
    /// A column reference.
    pub fn col(i: usize) -> ScalarExpr {
        ScalarExpr::Column(i)
    }

    /// A literal.
    pub fn lit(d: Datum, ty: SqlType) -> ScalarExpr {
        ScalarExpr::Literal(d, ty)
    }

    /// A binary expression.
    pub fn binary(op: BinaryOp, left: ScalarExpr, right: ScalarExpr) -> ScalarExpr {
        ScalarExpr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    /// The type of this expression given the types of the input columns.
    pub fn ty(&self, input: &[SqlType]) -> SqlType {
        match self {
            ScalarExpr::Column(i) => input.get(*i).copied().unwrap_or(SqlType::Null),
            ScalarExpr::Literal(_, t) => *t,
            ScalarExpr::Binary { op, left, right } => {
                if op.is_comparison() || matches!(op, BinaryOp::And | BinaryOp::Or) {
                    SqlType::Boolean
                } else if *op == BinaryOp::Concat {
                    SqlType::Varchar
                } else {
                    arithmetic_type(*op, left.ty(input), right.ty(input))
                }
            }
            ScalarExpr::Not(_)
            | ScalarExpr::IsNull { .. }
            | ScalarExpr::InList { .. }
            | ScalarExpr::Like { .. } => SqlType::Boolean,
            ScalarExpr::Negate(e) => e.ty(input),
            ScalarExpr::Cast { to, .. } => *to,
            ScalarExpr::Case { whens, else_ } => whens
                .iter()
                .map(|(_, r)| r.ty(input))
                .chain(else_.iter().map(|e| e.ty(input)))
                .find(|t| *t != SqlType::Null)
                .unwrap_or(SqlType::Null),
            ScalarExpr::Coalesce(args) => args
                .iter()
                .map(|a| a.ty(input))
                .find(|t| *t != SqlType::Null)
                .unwrap_or(SqlType::Null),
            ScalarExpr::Call { func, args } => {
                let tys: Vec<SqlType> = args.iter().map(|a| a.ty(input)).collect();
                func.return_type(&tys)
            }
        }
    }

    /// Calls `f` on every column index this expression reads.
    pub fn visit_columns(&self, f: &mut impl FnMut(usize)) {
        match self {
            ScalarExpr::Column(i) => f(*i),
            ScalarExpr::Literal(..) => {}
            ScalarExpr::Binary { left, right, .. } => {
                left.visit_columns(f);
                right.visit_columns(f);
            }
            ScalarExpr::Not(e) | ScalarExpr::Negate(e) | ScalarExpr::IsNull { expr: e, .. } => {
                e.visit_columns(f)
            }
            ScalarExpr::Cast { expr, .. } => expr.visit_columns(f),
            ScalarExpr::Case { whens, else_ } => {
                for (c, r) in whens {
                    c.visit_columns(f);
                    r.visit_columns(f);
                }
                if let Some(e) = else_ {
                    e.visit_columns(f);
                }
            }
            ScalarExpr::Coalesce(args) | ScalarExpr::Call { args, .. } => {
                args.iter().for_each(|a| a.visit_columns(f))
            }
            ScalarExpr::InList { expr, list, .. } => {
                expr.visit_columns(f);
                list.iter().for_each(|a| a.visit_columns(f));
            }
            ScalarExpr::Like { expr, pattern, .. } => {
                expr.visit_columns(f);
                pattern.visit_columns(f);
            }
        }
    }

    /// False when the expression calls a function whose value depends on when it is
    /// evaluated (`PROCTIME()`): such an expression is not a constant even without
    /// columns.
    pub fn is_deterministic(&self) -> bool {
        match self {
            ScalarExpr::Column(_) | ScalarExpr::Literal(..) => true,
            ScalarExpr::Binary { left, right, .. } => {
                left.is_deterministic() && right.is_deterministic()
            }
            ScalarExpr::Not(e) | ScalarExpr::Negate(e) | ScalarExpr::IsNull { expr: e, .. } => {
                e.is_deterministic()
            }
            ScalarExpr::Cast { expr, .. } => expr.is_deterministic(),
            ScalarExpr::Case { whens, else_ } => {
                whens
                    .iter()
                    .all(|(c, r)| c.is_deterministic() && r.is_deterministic())
                    && else_.as_ref().is_none_or(|e| e.is_deterministic())
            }
            ScalarExpr::Coalesce(args) => args.iter().all(ScalarExpr::is_deterministic),
            ScalarExpr::Call { func, args } => {
                func.is_deterministic() && args.iter().all(ScalarExpr::is_deterministic)
            }
            ScalarExpr::InList { expr, list, .. } => {
                expr.is_deterministic() && list.iter().all(ScalarExpr::is_deterministic)
            }
            ScalarExpr::Like { expr, pattern, .. } => {
                expr.is_deterministic() && pattern.is_deterministic()
            }
        }
    }

    /// Sorted, de-duplicated column indexes this expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols = Vec::new();
        self.visit_columns(&mut |c| cols.push(c));
        cols.sort_unstable();
        cols.dedup();
        cols
    }

    /// Rewrites every column index through `map` (used when inputs are re-projected).
    pub fn remap_columns(&self, map: &impl Fn(usize) -> usize) -> ScalarExpr {
        let mut e = self.clone();
        e.remap_in_place(map);
        e
    }

    fn remap_in_place(&mut self, map: &impl Fn(usize) -> usize) {
        match self {
            ScalarExpr::Column(i) => *i = map(*i),
            ScalarExpr::Literal(..) => {}
            ScalarExpr::Binary { left, right, .. } => {
                left.remap_in_place(map);
                right.remap_in_place(map);
            }
            ScalarExpr::Not(e) | ScalarExpr::Negate(e) | ScalarExpr::IsNull { expr: e, .. } => {
                e.remap_in_place(map)
            }
            ScalarExpr::Cast { expr, .. } => expr.remap_in_place(map),
            ScalarExpr::Case { whens, else_ } => {
                for (c, r) in whens {
                    c.remap_in_place(map);
                    r.remap_in_place(map);
                }
                if let Some(e) = else_ {
                    e.remap_in_place(map);
                }
            }
            ScalarExpr::Coalesce(args) | ScalarExpr::Call { args, .. } => {
                args.iter_mut().for_each(|a| a.remap_in_place(map))
            }
            ScalarExpr::InList { expr, list, .. } => {
                expr.remap_in_place(map);
                list.iter_mut().for_each(|a| a.remap_in_place(map));
            }
            ScalarExpr::Like { expr, pattern, .. } => {
                expr.remap_in_place(map);
                pattern.remap_in_place(map);
            }
        }
    }

    /// Splits a conjunction into its conjuncts (`a AND (b AND c)` → `[a, b, c]`).
    pub fn conjuncts(self) -> Vec<ScalarExpr> {
        match self {
            ScalarExpr::Binary {
                op: BinaryOp::And,
                left,
                right,
            } => {
                let mut v = left.conjuncts();
                v.extend(right.conjuncts());
                v
            }
            e => vec![e],
        }
    }

    /// Joins conjuncts with AND; `None` for an empty list.
    pub fn and_all(exprs: Vec<ScalarExpr>) -> Option<ScalarExpr> {
        exprs
            .into_iter()
            .reduce(|a, b| ScalarExpr::binary(BinaryOp::And, a, b))
    }
}

/// Aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    /// `COUNT(*)` (no argument) or `COUNT(x)` (non-NULL x): BIGINT, never NULL.
    Count,
    /// `SUM(x)`: BIGINT for integers, DECIMAL(38, s) for DECIMAL(p, s), DOUBLE for DOUBLE; NULL on no non-NULL input.
    Sum,
    /// `AVG(x)`: DOUBLE; NULL on no non-NULL input.
    Avg,
    /// `MIN(x)`: type of x.
    Min,
    /// `MAX(x)`: type of x.
    Max,
}

impl AggFunc {
    /// The result type for an argument of type `arg` (`None` for `COUNT(*)`).
    pub fn return_type(self, arg: Option<SqlType>) -> SqlType {
        match (self, arg) {
            (AggFunc::Count, _) => SqlType::BigInt,
            (AggFunc::Avg, _) => SqlType::Double,
            (AggFunc::Sum, Some(SqlType::Int | SqlType::BigInt)) => SqlType::BigInt,
            (AggFunc::Sum, Some(SqlType::Decimal { scale, .. })) => SqlType::Decimal {
                precision: 38,
                scale,
            },
            (AggFunc::Sum | AggFunc::Min | AggFunc::Max, Some(t)) => t,
            (_, None) => SqlType::Null,
        }
    }
}

/// One aggregate in an aggregation: `func([DISTINCT] input[arg])`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AggregateCall {
    /// The aggregate function.
    pub func: AggFunc,
    /// The input column aggregated; `None` only for `COUNT(*)`.
    pub arg: Option<usize>,
    /// `DISTINCT` aggregation.
    pub distinct: bool,
    /// The result type (see [`AggFunc::return_type`]).
    pub ty: SqlType,
}

/// How one aggregate of a `PhysicalPlan::Reduce` (`sluice-compiler`'s dataflow plan)
/// keeps its state, chosen by the compiler from the aggregate, its argument type and
/// whether the input retracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggStrategy {
    /// A running state updated in O(1) per row and never revisited: `COUNT`, `SUM`/`AVG`
    /// of exact numbers (integers, intervals, DECIMAL), `MIN`/`MAX` over an input that
    /// never retracts. State: one value per group.
    Accumulate,
    /// `COUNT`/`SUM`/`AVG(DISTINCT x)` of exact numbers: a count per distinct
    /// (group, value); the running state changes only when a value appears or
    /// disappears. State: one entry per distinct value per group.
    Distinct,
    /// An ordered multiset of the group's values (value → count): `MIN`/`MAX` under
    /// retractions (the first or last key), `SUM`/`AVG` of DOUBLE (summed in value
    /// order, so the result does not depend on arrival order or the worker count) and
    /// their DISTINCT forms. Each change re-reads the group's values for such a sum.
    /// State: one entry per distinct value per group.
    Ordered,
}

impl AggStrategy {
    /// The name EXPLAIN prints.
    pub fn name(self) -> &'static str {
        match self {
            AggStrategy::Accumulate => "accumulate",
            AggStrategy::Distinct => "distinct",
            AggStrategy::Ordered => "ordered",
        }
    }
}

/// One ORDER BY key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SortKey {
    /// Column of the input sorted on.
    pub column: usize,
    /// Descending when true.
    pub descending: bool,
    /// NULLs before non-NULLs when true. Default (as DuckDB): NULLS LAST for both directions.
    pub nulls_first: bool,
}
