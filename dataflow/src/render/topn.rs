//! `TopN`: all rows to one worker (a reduce on the empty key), sorted by the sort keys
//! (ties broken by the whole row, so the cut is deterministic), `offset..offset+limit`.

use super::{map_updates, Diff, Rows};
use sluice_compiler::{Datum, Row, SortKey};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// SQL ordering of two rows by `keys` (NULLS FIRST/LAST per key), ties broken by the
/// whole row in datum order.
pub(crate) fn compare_rows(keys: &[SortKey], a: &[Datum], b: &[Datum]) -> Ordering {
    for k in keys {
        let ord = compare_key(k, a.get(k.column), b.get(k.column));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.cmp(b)
}

/// SQL ordering of two values of one sort key (a missing value is NULL).
pub(crate) fn compare_key(k: &SortKey, x: Option<&Datum>, y: Option<&Datum>) -> Ordering {
    let x_null = x.is_none_or(Datum::is_null);
    let y_null = y.is_none_or(Datum::is_null);
    match (x_null, y_null) {
        (true, true) => Ordering::Equal,
        (true, false) if k.nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if k.nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let o = x.cmp(&y);
            if k.descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// Expands multiplicities, sorts by `keys` and keeps `offset..offset+limit`, returning
/// the kept rows with their counts.
pub(crate) fn top_rows<'a>(
    rows: impl Iterator<Item = (&'a Row, Diff)>,
    keys: &[SortKey],
    limit: Option<u64>,
    offset: u64,
) -> Vec<(Row, Diff)> {
    let mut sorted: Vec<(&Row, Diff)> = rows.filter(|(_, n)| *n > 0).collect();
    sorted.sort_by(|a, b| compare_rows(keys, a.0, b.0));
    let mut skip = offset;
    let mut take = limit.unwrap_or(u64::MAX);
    let mut out: Vec<(Row, Diff)> = Vec::new();
    for (row, n) in sorted {
        let mut n = n as u64;
        let skipped = n.min(skip);
        skip -= skipped;
        n -= skipped;
        let kept = n.min(take);
        take -= kept;
        if kept > 0 {
            out.push((row.clone(), kept as Diff));
        }
        if take == 0 {
            break;
        }
    }
    out
}

/// Renders `TopN`.
pub(crate) fn render_topn<'s>(
    rows: Rows<'s>,
    keys: Vec<SortKey>,
    limit: Option<u64>,
    offset: u64,
) -> Rows<'s> {
    let keyed = map_updates(rows, "TopN: key", |row: Row, t, r, out| {
        out.push(((Row::new(), row), t, r))
    });
    let top = keyed.reduce_named(
        "TopN",
        move |_key: &Row, input: &[(&Row, Diff)], output: &mut Vec<(Row, Diff)>| {
            let mut merged: BTreeMap<Row, Diff> = BTreeMap::new();
            for (row, n) in top_rows(input.iter().map(|(r, n)| (*r, *n)), &keys, limit, offset) {
                *merged.entry(row).or_default() += n;
            }
            output.extend(merged);
        },
    );
    map_updates(top, "TopN: unkey", |(_k, row): (Row, Row), t, r, out| {
        out.push((row, t, r))
    })
}
