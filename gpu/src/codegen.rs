//! CUDA C source for a fused `Calc` (predicate, then projection), generated from bound
//! expressions and compiled with NVRTC at run time (cached by source).
//!
//! The generated kernel evaluates, for every row `i` (grid-stride loop), the predicate
//! and, for rows where it is TRUE, each computed projection. Every expression node
//! becomes a pair of locals `v<k>` (the value) and `n<k>` (is NULL), so SQL NULL
//! semantics and Kleene logic are explicit:
//!
//! ```text
//! AND:  n = !(fL || fR) && (nL || nR),  v = !fL && !fR && !n     where f = !n && !v
//! IN:   NULL probe → NULL; a match → TRUE; else NULL if a candidate is NULL, else FALSE
//! ```
//!
//! Integer arithmetic is checked: an overflow (or `MIN / -1`) sets `*err`; the host
//! then recomputes the whole batch on the CPU, which raises the row evaluator's exact
//! error (or none, when the overflowing row was one the CPU never evaluates, e.g. the
//! right side of `FALSE AND …`). Division or modulo by zero is NULL (integers, and
//! DOUBLEs under [`sluice_expr::eval::FLOAT_DIVISION_BY_ZERO_IS_NULL`]). DOUBLE
//! comparisons use the row evaluator's total order (`-0.0 = 0.0`, NaN equal to NaN and
//! larger than everything); DOUBLE arithmetic is IEEE with FMA contraction off
//! (`--fmad=false`), so results are bit-identical to the CPU's.
//!
//! Column data layout (Arrow): the kernel receives `cols`, four `u64` per used column:
//! values pointer, values bit offset (BOOLEAN columns are bit-packed), validity bitmap
//! pointer (0: no NULLs) and validity bit offset. Outputs: `keep` (one byte per row)
//! and `outs`, two pointers per computed projection: values (one byte per BOOLEAN) and
//! validity (one byte per row).

use sluice_catalogs::SqlType;
use sluice_expr::eval::FLOAT_DIVISION_BY_ZERO_IS_NULL;
use sluice_expr::gpu_support::expr_gpu_support;
use sluice_expr::{BinaryOp, Datum, ScalarExpr};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The kernel's entry point name.
pub const CALC_KERNEL: &str = "sluice_calc";

/// Helpers every generated kernel starts with.
const PRELUDE: &str = r#"
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned char u8;
#define I64_MIN (-9223372036854775807LL - 1LL)
#define I64_MAX 9223372036854775807LL
#define I32_MIN (-2147483647LL - 1LL)
#define I32_MAX 2147483647LL
__device__ __forceinline__ bool sl_valid(const u64* c, int k, i64 i) {
    const u8* b = (const u8*)c[4 * k + 2];
    if (b == 0) return true;
    u64 j = c[4 * k + 3] + (u64)i;
    return (b[j >> 3] >> (j & 7)) & 1;
}
__device__ __forceinline__ bool sl_bit(const u64* c, int k, i64 i) {
    const u8* b = (const u8*)c[4 * k];
    u64 j = c[4 * k + 1] + (u64)i;
    return (b[j >> 3] >> (j & 7)) & 1;
}
__device__ __forceinline__ double sl_canon(double x) {
    if (x == 0.0) return 0.0;
    if (x != x) return __longlong_as_double(0x7ff8000000000000LL);
    return x;
}
/* The row evaluator's total order on DOUBLE: -0.0 = 0.0, NaN = NaN, NaN largest. */
__device__ __forceinline__ int sl_cmp_f64(double a, double b) {
    a = sl_canon(a); b = sl_canon(b);
    bool an = a != a, bn = b != b;
    if (an || bn) return an == bn ? 0 : (an ? 1 : -1);
    return a < b ? -1 : (a > b ? 1 : 0);
}
template <typename T> __device__ __forceinline__ int sl_cmp(T a, T b) {
    return a < b ? -1 : (a > b ? 1 : 0);
}
__device__ __forceinline__ int sl_cmp(double a, double b) { return sl_cmp_f64(a, b); }
__device__ __forceinline__ bool sl_add_ovf(i64 a, i64 b, i64* r) {
    u64 s = (u64)a + (u64)b; *r = (i64)s;
    return ((a ^ *r) & (b ^ *r)) < 0;
}
__device__ __forceinline__ bool sl_sub_ovf(i64 a, i64 b, i64* r) {
    u64 s = (u64)a - (u64)b; *r = (i64)s;
    return ((a ^ b) & (a ^ *r)) < 0;
}
__device__ __forceinline__ bool sl_mul_ovf(i64 a, i64 b, i64* r) {
    *r = (i64)((u64)a * (u64)b);
    i64 hi = __mul64hi(a, b);
    return hi != (*r >> 63);
}
"#;

/// A generated `Calc` kernel and how to feed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalcProgram {
    /// The CUDA C source (entry point [`CALC_KERNEL`]).
    pub source: String,
    /// Input column indexes the kernel reads, in slot order (slot `k` is `cols[4k..4k+4]`).
    pub columns: Vec<usize>,
    /// Whether the kernel evaluates a predicate (otherwise every row is kept).
    pub has_predicate: bool,
    /// Computed projections: `(position in the projection list, SQL type)`, in `outs` order.
    pub outputs: Vec<(usize, SqlType)>,
}

/// Why an expression cannot be generated (the compiler's eligibility said no).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not supported on the GPU: {0}")]
pub struct Unsupported(pub String);

/// The CUDA C type holding a value of `t`.
fn c_type(t: SqlType) -> Result<&'static str, Unsupported> {
    Ok(match t {
        SqlType::Boolean => "bool",
        SqlType::Int | SqlType::Date => "int",
        SqlType::BigInt | SqlType::Timestamp => "i64",
        SqlType::Double => "double",
        SqlType::Null => "bool",
        other => return Err(Unsupported(format!("type {other}"))),
    })
}

/// A C literal for a non-NULL datum.
fn c_literal(d: &Datum) -> Result<String, Unsupported> {
    Ok(match d {
        Datum::Bool(b) => b.to_string(),
        Datum::Int(i) | Datum::Timestamp(i) => int_literal(*i),
        Datum::Date(d) => int_literal(i64::from(*d)),
        Datum::Float(f) => format!(
            "__longlong_as_double({})",
            int_literal(f.0.to_bits() as i64)
        ),
        other => return Err(Unsupported(format!("literal {other:?}"))),
    })
}

fn int_literal(i: i64) -> String {
    if i == i64::MIN {
        "I64_MIN".to_string()
    } else {
        format!("{i}LL")
    }
}

struct Gen<'a> {
    types: &'a [SqlType],
    body: String,
    next: usize,
    slots: BTreeMap<usize, usize>,
    indent: &'static str,
}

impl Gen<'_> {
    fn slot(&mut self, col: usize) -> usize {
        let n = self.slots.len();
        *self.slots.entry(col).or_insert(n)
    }

    fn line(&mut self, s: &str) {
        self.body.push_str(self.indent);
        self.body.push_str(s);
        self.body.push('\n');
    }

    /// Emits code for `e`; returns the node number `k` (locals `v<k>`, `n<k>`).
    fn expr(&mut self, e: &ScalarExpr) -> Result<usize, Unsupported> {
        let ty = e.ty(self.types);
        let ct = c_type(ty)?;
        let k = self.next;
        self.next += 1;
        match e {
            ScalarExpr::Column(i) => {
                let s = self.slot(*i);
                let load = match ty {
                    SqlType::Boolean => format!("sl_bit(cols, {s}, i)"),
                    _ => format!("((const {ct}*)cols[{}])[i]", 4 * s),
                };
                self.line(&format!(
                    "bool n{k} = !sl_valid(cols, {s}, i); {ct} v{k} = n{k} ? ({ct})0 : {load};"
                ));
            }
            ScalarExpr::Literal(d, _) => {
                if d.is_null() {
                    self.line(&format!("bool n{k} = true; {ct} v{k} = ({ct})0;"));
                } else {
                    let lit = c_literal(d)?;
                    self.line(&format!("bool n{k} = false; {ct} v{k} = ({ct}){lit};"));
                }
            }
            ScalarExpr::Binary { op, left, right } => {
                let operand_ty = left.ty(self.types);
                let l = self.expr(left)?;
                let r = self.expr(right)?;
                self.binary(k, *op, l, r, operand_ty, ty)?;
            }
            ScalarExpr::Not(x) => {
                let x = self.expr(x)?;
                self.line(&format!("bool n{k} = n{x}; bool v{k} = !n{x} && !v{x};"));
            }
            ScalarExpr::IsNull { expr, negated } => {
                let x = self.expr(expr)?;
                let bang = if *negated { "!" } else { "" };
                self.line(&format!("bool n{k} = false; bool v{k} = {bang}n{x};"));
            }
            ScalarExpr::Negate(x) => {
                let x = self.expr(x)?;
                match ty {
                    SqlType::Double => {
                        self.line(&format!("bool n{k} = n{x}; double v{k} = -v{x};"))
                    }
                    SqlType::Int => self.line(&format!(
                        "bool n{k} = n{x}; int v{k} = 0; if (!n{k}) {{ i64 t = -(i64)v{x}; \
                         if (t < I32_MIN || t > I32_MAX) *err = 1; else v{k} = (int)t; }}"
                    )),
                    SqlType::BigInt => self.line(&format!(
                        "bool n{k} = n{x}; i64 v{k} = 0; if (!n{k}) {{ \
                         if (v{x} == I64_MIN) *err = 1; else v{k} = -v{x}; }}"
                    )),
                    other => return Err(Unsupported(format!("-{other}"))),
                }
            }
            ScalarExpr::Cast { expr, .. } => {
                let x = self.expr(expr)?;
                self.line(&format!(
                    "bool n{k} = n{x}; {ct} v{k} = n{x} ? ({ct})0 : ({ct})v{x};"
                ));
            }
            ScalarExpr::InList {
                expr,
                list,
                negated,
            } => {
                let x = self.expr(expr)?;
                self.line(&format!("bool m{k} = false, ln{k} = false;"));
                for item in list {
                    let y = self.expr(item)?;
                    self.line(&format!(
                        "if (n{y}) ln{k} = true; else if (!n{x} && sl_cmp(v{x}, v{y}) == 0) m{k} = true;"
                    ));
                }
                let (hit, miss) = if *negated {
                    ("false", "true")
                } else {
                    ("true", "false")
                };
                self.line(&format!(
                    "bool n{k} = n{x} || (!m{k} && ln{k}); bool v{k} = n{k} ? false : (m{k} ? {hit} : {miss});"
                ));
            }
            other => {
                return Err(Unsupported(format!("{other:?}")));
            }
        }
        Ok(k)
    }

    fn binary(
        &mut self,
        k: usize,
        op: BinaryOp,
        l: usize,
        r: usize,
        operand: SqlType,
        out: SqlType,
    ) -> Result<(), Unsupported> {
        let cmp = |o: &str| {
            format!("bool n{k} = n{l} || n{r}; bool v{k} = !n{k} && (sl_cmp(v{l}, v{r}) {o} 0);")
        };
        let line = match op {
            BinaryOp::Eq => cmp("=="),
            BinaryOp::NotEq => cmp("!="),
            BinaryOp::Lt => cmp("<"),
            BinaryOp::LtEq => cmp("<="),
            BinaryOp::Gt => cmp(">"),
            BinaryOp::GtEq => cmp(">="),
            BinaryOp::And => format!(
                "bool f{k} = (!n{l} && !v{l}) || (!n{r} && !v{r}); \
                 bool n{k} = !f{k} && (n{l} || n{r}); bool v{k} = !f{k} && !n{k};"
            ),
            BinaryOp::Or => format!(
                "bool t{k} = (!n{l} && v{l}) || (!n{r} && v{r}); \
                 bool n{k} = !t{k} && (n{l} || n{r}); bool v{k} = t{k};"
            ),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                return self.arithmetic(k, op, l, r, operand, out)
            }
            BinaryOp::Concat => return Err(Unsupported("||".to_string())),
        };
        self.line(&line);
        Ok(())
    }

    fn arithmetic(
        &mut self,
        k: usize,
        op: BinaryOp,
        l: usize,
        r: usize,
        operand: SqlType,
        out: SqlType,
    ) -> Result<(), Unsupported> {
        if operand != out {
            return Err(Unsupported(format!("{operand} {} → {out}", op.symbol())));
        }
        match out {
            SqlType::Double => {
                let zero_null = FLOAT_DIVISION_BY_ZERO_IS_NULL;
                let e = match op {
                    BinaryOp::Add => format!("v{l} + v{r}"),
                    BinaryOp::Sub => format!("v{l} - v{r}"),
                    BinaryOp::Mul => format!("v{l} * v{r}"),
                    BinaryOp::Div => format!("v{l} / v{r}"),
                    _ => format!("fmod(v{l}, v{r})"),
                };
                let zero = if zero_null && matches!(op, BinaryOp::Div | BinaryOp::Mod) {
                    format!(" || v{r} == 0.0")
                } else {
                    String::new()
                };
                self.line(&format!(
                    "bool n{k} = n{l} || n{r}{zero}; double v{k} = n{k} ? 0.0 : {e};"
                ));
            }
            SqlType::Int | SqlType::BigInt => {
                let int = out == SqlType::Int;
                let ct = if int { "int" } else { "i64" };
                let mut s = format!("bool n{k} = n{l} || n{r}; {ct} v{k} = 0; if (!n{k}) {{ i64 a = (i64)v{l}, b = (i64)v{r}, t = 0; bool o = false; ");
                match op {
                    BinaryOp::Add => s.push_str("o = sl_add_ovf(a, b, &t); "),
                    BinaryOp::Sub => s.push_str("o = sl_sub_ovf(a, b, &t); "),
                    BinaryOp::Mul => s.push_str("o = sl_mul_ovf(a, b, &t); "),
                    BinaryOp::Div => s.push_str(&format!(
                        "if (b == 0) n{k} = true; else if (a == I64_MIN && b == -1) o = true; else t = a / b; "
                    )),
                    // MIN % -1 is 0 (wrapping), as in the row evaluator.
                    _ => s.push_str(&format!(
                        "if (b == 0) n{k} = true; else if (b == -1) t = 0; else t = a % b; "
                    )),
                }
                if int {
                    s.push_str("if (t < I32_MIN || t > I32_MAX) o = true; ");
                }
                let _ = write!(s, "if (o) *err = 1; else if (!n{k}) v{k} = ({ct})t; }}");
                self.line(&s);
            }
            other => return Err(Unsupported(format!("arithmetic on {other}"))),
        }
        Ok(())
    }
}

/// Generates the kernel for a `Calc` over columns of `types`. The predicate must be
/// supported; projections that are plain column references (passed through by the
/// host) or unsupported (evaluated by the CPU kernels over the kept rows) are left out
/// of [`CalcProgram::outputs`].
pub fn generate_calc(
    predicate: Option<&ScalarExpr>,
    project: Option<&[ScalarExpr]>,
    types: &[SqlType],
) -> Result<CalcProgram, Unsupported> {
    if let Some(p) = predicate {
        expr_gpu_support(p, types).map_err(Unsupported)?;
    }
    let mut g = Gen {
        types,
        body: String::new(),
        next: 0,
        slots: BTreeMap::new(),
        indent: "        ",
    };
    if let Some(p) = predicate {
        let k = g.expr(p)?;
        g.line(&format!("bool keep_row = !n{k} && v{k};"));
    } else {
        g.line("bool keep_row = true;");
    }
    g.line("keep[i] = keep_row ? 1 : 0;");
    g.line("if (!keep_row) continue;");
    let mut outputs = Vec::new();
    for (pos, e) in project.unwrap_or_default().iter().enumerate() {
        if matches!(e, ScalarExpr::Column(_)) {
            continue;
        }
        if expr_gpu_support(e, types).is_err() {
            // Left to the CPU kernels (per expression), over the kept rows.
            continue;
        }
        let ty = e.ty(types);
        let j = outputs.len();
        let k = g.expr(e)?;
        let store = match ty {
            SqlType::Boolean => format!("((u8*)outs[{}])[i] = v{k} ? 1 : 0;", 2 * j),
            _ => format!("(({}*)outs[{}])[i] = v{k};", c_type(ty)?, 2 * j),
        };
        g.line(&format!(
            "{store} ((u8*)outs[{}])[i] = n{k} ? 0 : 1;",
            2 * j + 1
        ));
        outputs.push((pos, ty));
    }
    let mut source = String::from(PRELUDE);
    let _ = write!(
        source,
        "extern \"C\" __global__ void {CALC_KERNEL}(const u64* cols, i64 n, u8* keep, const u64* outs, int* err) {{\n    \
         for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)blockDim.x * gridDim.x) {{\n{}    }}\n}}\n",
        g.body
    );
    let mut columns = vec![0; g.slots.len()];
    for (col, slot) in g.slots {
        columns[slot] = col;
    }
    Ok(CalcProgram {
        source,
        columns,
        has_predicate: predicate.is_some(),
        outputs,
    })
}

/// A cheap syntactic sanity check of CUDA C source (no compiler on a CPU-only machine):
/// balanced brackets outside string literals and comments, and an `extern "C"
/// __global__` entry point. Returns the first problem found.
pub fn sanity_check(source: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    let b = source.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = source[i + 2..].find("*/").ok_or("unterminated comment")?;
                i += end + 4;
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i += source[i..].find('\n').unwrap_or(b.len() - i);
                continue;
            }
            b'"' => {
                let end = source[i + 1..].find('"').ok_or("unterminated string")?;
                i += end + 2;
                continue;
            }
            c @ (b'(' | b'[' | b'{') => stack.push(c),
            c @ (b')' | b']' | b'}') => {
                let want = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if stack.pop() != Some(want) {
                    return Err(format!("unbalanced '{}' at byte {i}", c as char));
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !stack.is_empty() {
        return Err(format!("{} unclosed brackets", stack.len()));
    }
    if !source.contains("extern \"C\" __global__") {
        return Err("no extern \"C\" __global__ entry point".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_balanced_kernel_with_column_slots() {
        let types = [SqlType::BigInt, SqlType::Varchar, SqlType::Double];
        let pred = ScalarExpr::binary(
            BinaryOp::And,
            ScalarExpr::binary(
                BinaryOp::Gt,
                ScalarExpr::Column(2),
                ScalarExpr::Literal(Datum::Float(sluice_expr::F64(1.5)), SqlType::Double),
            ),
            ScalarExpr::IsNull {
                expr: Box::new(ScalarExpr::Column(0)),
                negated: true,
            },
        );
        let proj = [
            ScalarExpr::Column(1),
            ScalarExpr::binary(
                BinaryOp::Mul,
                ScalarExpr::Column(0),
                ScalarExpr::Literal(Datum::Int(i64::MIN), SqlType::BigInt),
            ),
        ];
        let p = generate_calc(Some(&pred), Some(&proj), &types).unwrap();
        assert_eq!(p.columns, vec![2, 0]);
        assert_eq!(p.outputs, vec![(1, SqlType::BigInt)]);
        assert!(p.has_predicate);
        sanity_check(&p.source).unwrap();
        assert!(p.source.contains("I64_MIN"));
        // -0.0's bit pattern is i64::MIN: never spelled as an overflowing literal.
        assert_eq!(
            c_literal(&Datum::Float(sluice_expr::F64(-0.0))).unwrap(),
            "__longlong_as_double(I64_MIN)"
        );
        assert!(p.source.contains("sl_mul_ovf"));
    }

    #[test]
    fn unsupported_expressions_are_refused() {
        let types = [SqlType::Varchar];
        let pred = ScalarExpr::binary(BinaryOp::Eq, ScalarExpr::Column(0), ScalarExpr::Column(0));
        assert!(generate_calc(Some(&pred), None, &types).is_err());
        // An unsupported projection is left to the CPU.
        let p = generate_calc(None, Some(&[pred]), &types).unwrap();
        assert!(p.outputs.is_empty());
    }

    #[test]
    fn sanity_check_finds_unbalanced_source() {
        assert!(sanity_check("extern \"C\" __global__ void f() { (").is_err());
        assert!(sanity_check("void f() {}").is_err());
        assert!(sanity_check("extern \"C\" __global__ void f() { /* } */ }").is_ok());
    }
}
