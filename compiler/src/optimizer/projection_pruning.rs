//! [`ProjectionPruning`]: read and carry only the columns something downstream uses.
//!
//! The rule walks the plan top-down with the set of output columns the parent
//! requires. Each node adds what it reads itself (predicates, keys, group columns,
//! window time and partition columns), asks its inputs for exactly that, and reports
//! back which of its *old* output columns it still produces (always a superset of
//! what was required, in the old order); the parent re-indexes its expressions
//! accordingly. Concretely it:
//!
//! - shrinks `Scan.projection` to the required columns, the columns its pushed-down
//!   filters read, and the table's watermark column (kept whenever the table declares
//!   one: the source derives the watermark, and windows the event time, from it);
//! - drops `Project` expressions and aggregate calls nobody reads;
//! - makes every `Union` input produce exactly the required columns, inserting a
//!   re-indexing `Project` over an input that kept more.
//!
//! At least one column is kept wherever rows (not values) matter: a `COUNT(*)` over
//! a scan still reads one column, a global aggregate keeps one call. The root keeps
//! all its columns, so the plan's output schema never changes.

use super::Rule;
use crate::error::CompileError;
use crate::plan::LogicalPlan;
use sluice_expr::expr::{ScalarExpr, SortKey};
use std::collections::BTreeSet;

/// Prunes unused columns from scans, projections and aggregates.
pub struct ProjectionPruning;

impl Rule for ProjectionPruning {
    fn name(&self) -> &'static str {
        "projection_pruning"
    }

    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
        let width = plan.schema().len();
        let (plan, kept) = prune(plan, &(0..width).collect())?;
        if kept.len() != width {
            return Err(CompileError::internal(
                "projection pruning dropped a column of the query's result",
            ));
        }
        Ok(plan)
    }
}

/// Old column index → new column index, for columns in `kept` (ascending). Columns
/// not kept map to `usize::MAX`, which lowering rejects as out of range (it cannot
/// happen: every node asks its input for each column it reads).
fn index_map(kept: &[usize], old_width: usize) -> Vec<usize> {
    let mut map = vec![usize::MAX; old_width];
    for (new, &old) in kept.iter().enumerate() {
        if let Some(slot) = map.get_mut(old) {
            *slot = new;
        }
    }
    map
}

fn remap(e: &ScalarExpr, map: &[usize]) -> ScalarExpr {
    e.remap_columns(&|c| map.get(c).copied().unwrap_or(usize::MAX))
}

fn remap_col(c: usize, map: &[usize]) -> usize {
    map.get(c).copied().unwrap_or(usize::MAX)
}

fn add_columns(set: &mut BTreeSet<usize>, e: &ScalarExpr) {
    e.visit_columns(&mut |c| {
        set.insert(c);
    });
}

/// The input of a node that appends columns to its input's rows and reads partition,
/// order and `more` columns of it (a Top-N, an OVER aggregate), pruned to those and to
/// the input columns `required` above: the pruned input, the old input columns it
/// keeps, the old → new column map, and the partition and order keys remapped.
#[allow(clippy::type_complexity)]
fn prune_partitioned(
    input: LogicalPlan,
    required: &BTreeSet<usize>,
    partition_by: &[usize],
    order_by: Vec<SortKey>,
    more: &[usize],
) -> Result<
    (
        LogicalPlan,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        Vec<SortKey>,
    ),
    CompileError,
> {
    let input_width = input.schema().len();
    let mut need: BTreeSet<usize> = required
        .iter()
        .copied()
        .filter(|&c| c < input_width)
        .collect();
    need.extend(partition_by.iter().copied());
    need.extend(order_by.iter().map(|k| k.column));
    need.extend(more.iter().copied());
    let (input, kept_in) = prune(input, &need)?;
    let map = index_map(&kept_in, input_width);
    let partition_by = partition_by.iter().map(|&c| remap_col(c, &map)).collect();
    let order_by = order_by
        .into_iter()
        .map(|mut k| {
            k.column = remap_col(k.column, &map);
            k
        })
        .collect();
    Ok((input, kept_in, map, partition_by, order_by))
}

/// Rewrites `plan` to produce (at least) the `required` columns of its output; returns
/// the new plan and which old output columns it produces, ascending.
fn prune(
    plan: LogicalPlan,
    required: &BTreeSet<usize>,
) -> Result<(LogicalPlan, Vec<usize>), CompileError> {
    let width = plan.schema().len();
    match plan {
        LogicalPlan::Scan {
            table,
            projection,
            filters,
        } => {
            let mut need: BTreeSet<usize> =
                required.iter().copied().filter(|&c| c < width).collect();
            filters.iter().for_each(|f| add_columns(&mut need, f));
            if let Some(w) = &table.watermark {
                if let Some(pos) = projection.iter().position(|&t| t == w.column) {
                    need.insert(pos);
                }
            }
            if need.is_empty() && width > 0 {
                need.insert(0);
            }
            let kept: Vec<usize> = need.into_iter().filter(|&c| c < width).collect();
            let map = index_map(&kept, width);
            Ok((
                LogicalPlan::Scan {
                    projection: kept.iter().map(|&c| projection[c]).collect(),
                    filters: filters.iter().map(|f| remap(f, &map)).collect(),
                    table,
                },
                kept,
            ))
        }
        values @ LogicalPlan::Values { .. } => Ok((values, (0..width).collect())),
        LogicalPlan::Filter { input, predicate } => {
            let mut need = required.clone();
            add_columns(&mut need, &predicate);
            let (input, kept) = prune(*input, &need)?;
            let map = index_map(&kept, width);
            Ok((
                LogicalPlan::Filter {
                    input: Box::new(input),
                    predicate: remap(&predicate, &map),
                },
                kept,
            ))
        }
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => {
            let mut keep: Vec<usize> = required.iter().copied().filter(|&c| c < width).collect();
            if keep.is_empty() && width > 0 {
                keep.push(0);
            }
            let input_width = input.schema().len();
            let mut need = BTreeSet::new();
            keep.iter().for_each(|&k| add_columns(&mut need, &exprs[k]));
            let (input, input_kept) = prune(*input, &need)?;
            let map = index_map(&input_kept, input_width);
            Ok((
                LogicalPlan::Project {
                    input: Box::new(input),
                    exprs: keep.iter().map(|&k| remap(&exprs[k], &map)).collect(),
                    names: keep
                        .iter()
                        .map(|&k| names.get(k).cloned().unwrap_or_else(|| format!("c{k}")))
                        .collect(),
                },
                keep,
            ))
        }
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => {
            let lw = left.schema().len();
            let mut need_l: BTreeSet<usize> =
                required.iter().copied().filter(|&c| c < lw).collect();
            let mut need_r: BTreeSet<usize> = required
                .iter()
                .filter(|&&c| c >= lw && c < width)
                .map(|&c| c - lw)
                .collect();
            for (l, r) in &on {
                add_columns(&mut need_l, l);
                add_columns(&mut need_r, r);
            }
            if let Some(f) = &filter {
                f.visit_columns(&mut |c| {
                    if c < lw {
                        need_l.insert(c);
                    } else {
                        need_r.insert(c - lw);
                    }
                });
            }
            let (left, left_kept) = prune(*left, &need_l)?;
            let (right, right_kept) = prune(*right, &need_r)?;
            let lmap = index_map(&left_kept, lw);
            let rmap = index_map(&right_kept, width - lw);
            let mut kept = left_kept.clone();
            kept.extend(right_kept.iter().map(|&c| c + lw));
            let map = index_map(&kept, width);
            Ok((
                LogicalPlan::Join {
                    left: Box::new(left),
                    right: Box::new(right),
                    kind,
                    on: on
                        .iter()
                        .map(|(l, r)| (remap(l, &lmap), remap(r, &rmap)))
                        .collect(),
                    filter: filter.map(|f| remap(&f, &map)),
                },
                kept,
            ))
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => {
            let groups = group_by.len();
            let mut keep_aggs: Vec<usize> = required
                .iter()
                .filter(|&&c| c >= groups && c < width)
                .map(|&c| c - groups)
                .collect();
            if groups == 0 && keep_aggs.is_empty() && !aggs.is_empty() {
                keep_aggs.push(0);
            }
            let mut need: BTreeSet<usize> = group_by.iter().copied().collect();
            need.extend(keep_aggs.iter().filter_map(|&a| aggs[a].arg));
            // `COUNT(*)` over a zero-column projection: count the rows of its input
            // instead (zero-column rows are awkward for columnar stages).
            let input = match *input {
                LogicalPlan::Project { input, exprs, .. }
                    if need.is_empty() && exprs.is_empty() =>
                {
                    input
                }
                other => Box::new(other),
            };
            let input_width = input.schema().len();
            let (input, input_kept) = prune(*input, &need)?;
            let map = index_map(&input_kept, input_width);
            let mut kept: Vec<usize> = (0..groups).collect();
            kept.extend(keep_aggs.iter().map(|&a| a + groups));
            Ok((
                LogicalPlan::Aggregate {
                    input: Box::new(input),
                    group_by: group_by.iter().map(|&g| remap_col(g, &map)).collect(),
                    aggs: keep_aggs
                        .iter()
                        .map(|&a| {
                            let mut call = aggs[a].clone();
                            call.arg = call.arg.map(|c| remap_col(c, &map));
                            call
                        })
                        .collect(),
                },
                kept,
            ))
        }
        LogicalPlan::Window {
            input,
            kind,
            time_col,
            partition_by,
        } => {
            let input_width = input.schema().len();
            let mut need: BTreeSet<usize> = required
                .iter()
                .copied()
                .filter(|&c| c < input_width)
                .collect();
            need.insert(time_col);
            need.extend(partition_by.iter().copied());
            let (input, input_kept) = prune(*input, &need)?;
            let map = index_map(&input_kept, input_width);
            let mut kept = input_kept;
            kept.extend(input_width..width);
            Ok((
                LogicalPlan::Window {
                    input: Box::new(input),
                    kind,
                    time_col: remap_col(time_col, &map),
                    partition_by: partition_by.iter().map(|&c| remap_col(c, &map)).collect(),
                },
                kept,
            ))
        }
        LogicalPlan::Union { inputs } => {
            let mut target: Vec<usize> = required.iter().copied().filter(|&c| c < width).collect();
            if target.is_empty() && width > 0 {
                target.push(0);
            }
            let target_set: BTreeSet<usize> = target.iter().copied().collect();
            let mut pruned = Vec::with_capacity(inputs.len());
            for input in inputs {
                let input_width = input.schema().len();
                let (input, kept) = prune(input, &target_set)?;
                if kept == target {
                    pruned.push(input);
                } else {
                    // Re-index: this input kept more columns than the union needs.
                    let map = index_map(&kept, input_width);
                    let names = input.schema().fields;
                    pruned.push(LogicalPlan::Project {
                        exprs: target
                            .iter()
                            .map(|&c| ScalarExpr::Column(remap_col(c, &map)))
                            .collect(),
                        names: target
                            .iter()
                            .map(|&c| {
                                names
                                    .get(remap_col(c, &map))
                                    .map(|f| f.name.clone())
                                    .unwrap_or_default()
                            })
                            .collect(),
                        input: Box::new(input),
                    });
                }
            }
            Ok((LogicalPlan::Union { inputs: pruned }, target))
        }
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => {
            let mut need = required.clone();
            need.extend(keys.iter().map(|k| k.column));
            let (input, kept) = prune(*input, &need)?;
            let map = index_map(&kept, width);
            Ok((
                LogicalPlan::Sort {
                    input: Box::new(input),
                    keys: keys
                        .into_iter()
                        .map(|mut k| {
                            k.column = remap_col(k.column, &map);
                            k
                        })
                        .collect(),
                    limit,
                    offset,
                },
                kept,
            ))
        }
        LogicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            position,
        } => {
            // The input keeps what is required above, the partition and the order
            // columns (ties are broken by the rest of the pruned row: any tied row is a
            // correct first). The row number is dropped when nobody reads it (the
            // operator then never renumbers).
            let input_width = input.schema().len();
            let (input, kept_in, _, partition_by, order_by) =
                prune_partitioned(*input, required, &partition_by, order_by, &[])?;
            let rank_column = rank_column && required.contains(&input_width);
            let mut kept = kept_in;
            if rank_column {
                kept.push(input_width);
            }
            Ok((
                LogicalPlan::TopK {
                    input: Box::new(input),
                    partition_by,
                    order_by,
                    limit,
                    rank_column,
                    position,
                },
                kept,
            ))
        }
        LogicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => {
            // The input keeps what is required above and what the frames need: the
            // partition, order and argument columns. Every aggregate column is kept
            // (pruning one would renumber the rest; they cost little).
            let input_width = input.schema().len();
            let args: Vec<usize> = aggs.iter().filter_map(|a| a.arg).collect();
            let (input, kept_in, map, partition_by, order_by) =
                prune_partitioned(*input, required, &partition_by, order_by, &args)?;
            let aggs = aggs
                .into_iter()
                .map(|mut a| {
                    a.arg = a.arg.map(|c| remap_col(c, &map));
                    a
                })
                .collect::<Vec<_>>();
            let mut kept = kept_in;
            kept.extend(input_width..input_width + aggs.len());
            Ok((
                LogicalPlan::Over {
                    input: Box::new(input),
                    partition_by,
                    order_by,
                    aggs,
                    preceding,
                },
                kept,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain_logical;
    use crate::optimizer::optimize_with;
    use crate::optimizer::test_util::*;
    use crate::plan::{JoinKind, WindowKind};
    use sluice_expr::expr::SortKey;

    fn run(plan: LogicalPlan) -> String {
        let out = optimize_with(plan, &[Box::new(ProjectionPruning)]).unwrap();
        explain_logical(&out)
    }

    #[test]
    fn shrinks_scans_and_keeps_the_watermark_column() {
        let t = orders_table();
        let plan = project(
            filter(scan(&t), gt(col(2), dec(100, 2))),
            vec![(col(1), "o_custkey")],
        );
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Project: o_custkey
          Filter: o_price > 1.00
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
        ");
        insta::assert_snapshot!(run(plan), @r"
        Project: o_custkey
          Filter: o_price > 1.00
            Scan: orders projection=[o_custkey, o_price, o_ts]
        ");
        // Without a watermark, and with the filter pushed into the scan.
        let plan = project(
            LogicalPlan::Scan {
                table: customers_table(),
                projection: vec![2, 1, 0],
                filters: vec![gt(col(2), bigint(3))],
            },
            vec![(col(1), "c_name")],
        );
        insta::assert_snapshot!(run(plan), @r"
        Project: c_name
          Scan: customers projection=[c_name, c_custkey] filters=[c_custkey > 3]
        ");
    }

    #[test]
    fn drops_unused_project_expressions_and_aggregates() {
        let p = project(
            scan(&customers_table()),
            vec![
                (col(0), "k"),
                (add(col(0), bigint(1)), "k1"),
                (col(1), "name"),
            ],
        );
        let agg = aggregate(
            p,
            vec![2],
            vec![
                sum(0, sluice_catalogs::SqlType::BigInt),
                count_star(),
                sum(1, sluice_catalogs::SqlType::BigInt),
            ],
        );
        let plan = project(agg, vec![(col(0), "name"), (col(3), "s")]);
        insta::assert_snapshot!(run(plan), @r"
        Project: name, $agg0 AS s
          Aggregate: group_by=[name] aggs=[SUM(k1)]
            Project: c_custkey + 1 AS k1, c_name AS name
              Scan: customers projection=[c_custkey, c_name]
        ");
    }

    #[test]
    fn count_star_keeps_one_column_and_one_aggregate() {
        let agg = aggregate(
            scan(&customers_table()),
            vec![],
            vec![count_star(), count_star()],
        );
        let plan = project(agg, vec![(int(1), "one")]);
        insta::assert_snapshot!(run(plan), @r"
        Project: 1 AS one
          Aggregate: group_by=[] aggs=[COUNT(*)]
            Scan: customers projection=[c_custkey]
        ");
    }

    #[test]
    fn count_star_over_an_empty_projection_reads_the_input() {
        let empty = project(scan(&orders_table()), vec![]);
        let plan = aggregate(empty, vec![], vec![count_star()]);
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Aggregate: group_by=[] aggs=[COUNT(*)]
          Project: (no columns)
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
        ");
        insta::assert_snapshot!(run(plan), @r"
        Aggregate: group_by=[] aggs=[COUNT(*)]
          Scan: orders projection=[o_ts]
        ");
    }

    #[test]
    fn joins_keep_keys_and_filter_columns() {
        let j = LogicalPlan::Join {
            left: Box::new(scan(&customers_table())),
            right: Box::new(scan(&orders_table())),
            kind: JoinKind::Left,
            on: vec![(col(0), col(1))],
            filter: Some(gt(col(5), dec(0, 2))),
        };
        let plan = project(j, vec![(col(1), "c_name"), (col(3), "o_orderkey")]);
        insta::assert_snapshot!(run(plan), @r"
        Project: c_name, o_orderkey
          Join: Left on=[c_custkey = o_custkey] filter=o_price > 0.00
            Scan: customers projection=[c_custkey, c_name]
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
        ");
    }

    #[test]
    fn windows_sorts_and_unions() {
        let w = window(
            scan(&customers_table()),
            WindowKind::Tumble { size_ms: 10 },
            2,
        );
        let sorted = LogicalPlan::Sort {
            input: Box::new(w),
            keys: vec![SortKey {
                column: 0,
                descending: false,
                nulls_first: false,
            }],
            limit: Some(3),
            offset: 0,
        };
        let left = project(sorted, vec![(col(3), "ws")]);
        let right = project(scan(&orders_table()), vec![(col(3), "ws")]);
        let u = LogicalPlan::Union {
            inputs: vec![left, right],
        };
        insta::assert_snapshot!(run(u), @r"
        Union
          Project: window_start AS ws
            Sort: [c_custkey] limit=3
              Window: TUMBLE(time_col=c_ts, size=INTERVAL '10' MILLISECOND)
                Scan: customers projection=[c_custkey, c_ts]
          Project: o_ts AS ws
            Scan: orders projection=[o_ts]
        ");
        // A union below a projection that needs only one of two columns: the input
        // that must keep its watermark column gets a re-indexing Project.
        let u = LogicalPlan::Union {
            inputs: vec![
                project(
                    scan(&customers_table()),
                    vec![(col(0), "k"), (col(2), "ts")],
                ),
                LogicalPlan::Scan {
                    table: orders_table(),
                    projection: vec![0, 3],
                    filters: vec![],
                },
            ],
        };
        insta::assert_snapshot!(run(project(u, vec![(col(0), "k")])), @r"
        Project: k
          Union
            Project: c_custkey AS k
              Scan: customers projection=[c_custkey]
            Project: o_orderkey
              Scan: orders projection=[o_orderkey, o_ts]
        ");
    }

    #[test]
    fn does_not_fire_when_everything_is_used() {
        let plan = filter(scan(&customers_table()), gt(col(0), bigint(1)));
        let before = explain_logical(&plan);
        assert_eq!(run(plan.clone()), before);
        let out = optimize_with(plan.clone(), &[Box::new(ProjectionPruning)]).unwrap();
        assert_eq!(out, plan);
    }
}
