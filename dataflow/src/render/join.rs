//! `HashJoin`: both sides keyed by their key expressions and arranged (exchanged by
//! key hash); matched pairs pass the residual; outer kinds add the rows of a side that
//! have no match after the residual, NULL-padded. Rows with a NULL key never match
//! (but are unmatched rows of outer joins). No keys: every row gets the empty key, so
//! the cross product runs on one worker.
//!
//! Unmatched rows of a side = that side's rows, `antijoin`ed with the `distinct` set of
//! its rows that matched: duplicates of a row match (or not) together, so counts stay
//! exact without row ids.
//!
//! Keys and rows are arranged as [`PackedRow`]s (one allocation each, compared and
//! hashed as bytes); a pair is unpacked once it leaves the arrangement.

use super::calc::RowExpr;
use super::{map_fallible, map_updates, Context, Rows};
use crate::errors::ExecutionError;
use differential_dataflow::VecCollection;
use sluice_catalogs::SqlType;
use sluice_compiler::{Datum, JoinKind, PackedRow, Row, ScalarExpr};

/// The two rendered inputs of a join and their column types.
pub(crate) struct JoinSides<'s> {
    /// Left rows.
    pub(crate) left: Rows<'s>,
    /// Right rows.
    pub(crate) right: Rows<'s>,
    /// Left column types.
    pub(crate) left_types: Vec<SqlType>,
    /// Right column types.
    pub(crate) right_types: Vec<SqlType>,
    /// Flow-control reports of each side to its source (the symmetric join sends them;
    /// the arranged join drops them, which holds nothing back).
    pub(crate) flows: (
        Option<super::flow::FlowConsumer>,
        Option<super::flow::FlowConsumer>,
    ),
}

type Keyed<'s> = VecCollection<'s, super::Time, (Option<Row>, Row), super::Diff>;

/// Evaluates the key of every row: `(Some(key), row)`, or `(None, row)` for a NULL key.
pub(crate) fn key_side<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    keys: &[ScalarExpr],
    types: &[SqlType],
    name: &str,
) -> Keyed<'s> {
    let exprs: Vec<RowExpr> = keys.iter().map(|k| RowExpr::new(k, types)).collect();
    map_fallible(ctx, rows, name, move |row: Row, t, r, out| {
        let key: Result<Row, ExecutionError> =
            exprs.iter().map(|e| e.eval(&row, "HashJoin")).collect();
        match key {
            Ok(key) if key.iter().any(Datum::is_null) => out.push((Ok((None, row)), t, r)),
            Ok(key) => out.push((Ok((Some(key), row)), t, r)),
            Err(e) => out.push((Err(e), t, r)),
        }
    })
}

fn pad_right(row: Row, width: usize) -> Row {
    let mut row = row;
    row.extend(std::iter::repeat_n(Datum::Null, width));
    row
}

/// Renders `HashJoin`.
pub(crate) fn render_join<'s>(
    ctx: &mut Context<'s>,
    sides: JoinSides<'s>,
    kind: JoinKind,
    left_keys: &[ScalarExpr],
    right_keys: &[ScalarExpr],
    residual: Option<&ScalarExpr>,
) -> Rows<'s> {
    let left_width = sides.left_types.len();
    let right_width = sides.right_types.len();
    let left = key_side(
        ctx,
        sides.left,
        left_keys,
        &sides.left_types,
        "HashJoin: left key",
    );
    let right = key_side(
        ctx,
        sides.right,
        right_keys,
        &sides.right_types,
        "HashJoin: right key",
    );
    let left_keyed = map_updates(
        left.clone(),
        "HashJoin: left matchable",
        |(k, row): (Option<Row>, Row), t, r, out| {
            if let Some(k) = k {
                out.push(((PackedRow::pack(&k), PackedRow::pack(&row)), t, r));
            }
        },
    );
    let right_keyed = map_updates(
        right.clone(),
        "HashJoin: right matchable",
        |(k, row): (Option<Row>, Row), t, r, out| {
            if let Some(k) = k {
                out.push(((PackedRow::pack(&k), PackedRow::pack(&row)), t, r));
            }
        },
    );
    let mut joined_types = sides.left_types.clone();
    joined_types.extend(sides.right_types.iter().copied());
    let residual = residual.map(|p| RowExpr::new(p, &joined_types));
    let candidate_pairs = left_keyed.join_core(
        right_keyed.arrange_by_key_named("HashJoin: arrange right"),
        |_key: &PackedRow, l: &PackedRow, r: &PackedRow| Some((l.clone(), r.clone())),
    );
    let pairs = map_fallible(
        ctx,
        candidate_pairs,
        "HashJoin: residual",
        move |(l, r): (PackedRow, PackedRow), t, d, out| {
            let Some(residual) = &residual else {
                out.push((Ok((l, r)), t, d));
                return;
            };
            let mut joined = l.unpack();
            joined.extend(r.iter());
            match residual.holds(&joined, "HashJoin") {
                Ok(true) => out.push((Ok((l, r)), t, d)),
                Ok(false) => {}
                Err(e) => out.push((Err(e), t, d)),
            }
        },
    );
    let mut result = map_updates(
        pairs.clone(),
        "HashJoin: concat pair",
        |(l, r): (PackedRow, PackedRow), t, d, out| {
            let mut joined = l.unpack();
            joined.extend(r.iter());
            out.push((joined, t, d));
        },
    );
    if matches!(kind, JoinKind::Left | JoinKind::Full) {
        let matched = map_updates(
            pairs.clone(),
            "HashJoin: matched left",
            |(l, _r): (PackedRow, PackedRow), t, d, out| out.push((l, t, d)),
        )
        .threshold_named("HashJoin: distinct matched left", |_row, n| {
            isize::from(*n > 0)
        });
        let all = map_updates(
            left,
            "HashJoin: left rows",
            |(_k, row): (Option<Row>, Row), t, d, out| {
                out.push(((PackedRow::pack(&row), ()), t, d))
            },
        );
        let unmatched = map_updates(
            all.antijoin(matched),
            "HashJoin: pad unmatched left",
            move |(row, ()): (PackedRow, ()), t, d, out| {
                out.push((pad_right(row.unpack(), right_width), t, d))
            },
        );
        result = result.concat(unmatched);
    }
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        let matched = map_updates(
            pairs,
            "HashJoin: matched right",
            |(_l, r): (PackedRow, PackedRow), t, d, out| out.push((r, t, d)),
        )
        .threshold_named("HashJoin: distinct matched right", |_row, n| {
            isize::from(*n > 0)
        });
        let all = map_updates(
            right,
            "HashJoin: right rows",
            |(_k, row): (Option<Row>, Row), t, d, out| {
                out.push(((PackedRow::pack(&row), ()), t, d))
            },
        );
        let unmatched = map_updates(
            all.antijoin(matched),
            "HashJoin: pad unmatched right",
            move |(row, ()): (PackedRow, ()), t, d, out| {
                let mut padded: Row = std::iter::repeat_n(Datum::Null, left_width).collect();
                padded.extend(row.iter());
                out.push((padded, t, d))
            },
        );
        result = result.concat(unmatched);
    }
    result
}
