//! What a plan keeps across restarts, and what a change of a job's SQL keeps.
//!
//! ```text
//! DataflowPlan ──layout──▶ sources (stable ids) + stateful operators (stable ids, snapshotted?)
//! old plan, new plan ──change_plan──▶ per source / operator / sink: kept, reset, new, dropped + why
//! ```
//!
//! A checkpoint record (`instance::CheckpointRecord`) stores source positions and
//! operator snapshots under these ids, and a restored run looks its own ids up in it:
//! what has the same id in the new plan continues, what has none starts from scratch.
//! The master shows [`change_plan`] before a job's SQL changes
//! (`POST /api/v1/jobs/{name}/plan`); the worker applies the same ids, so the plan says
//! exactly what the restart will do.
//!
//! **Identities.** A source is its table: name, connector and every non-secret option
//! ([`source_id`]); a table read `n` times has ids `…#0` to `…#(n-1)`, counted in
//! plan order. A stateful operator is its whole sub-plan ([`operator_id`]): an operator
//! keeps its state only when neither it nor anything below it changed, so a kept state
//! always describes the input the new plan feeds it. Secret option values never enter an
//! id (they are sealed at rest with a random nonce, and must not leak through a hash).
//!
//! **Which state is snapshotted.** [`checkpoint_mode`] decides whether a plan
//! checkpoints at all. Event-time window aggregates (tumble, hop by pane, session) and
//! the symmetric hash join (regular inner join of append-only inputs, interval join)
//! snapshot their state and restore without emitting anything, so anything may
//! consume them. Aggregates (`Reduce`, every strategy) and the monotonic Top-N snapshot
//! their state and re-emit their result at a restore; the arranged join and the other
//! Top-Ns are checkpointed as their inputs ([`is_kept_as_inputs`]) and re-emit too.
//! What consumes a re-emitting operator is a sink, or an operator of the same kinds,
//! which is then **rebuilt** ([`rebuilt_operators`]): it keeps no snapshot of its own,
//! starts empty at a restore and rebuilds its state from the re-emitted input — and
//! re-emits in turn. An event-time window aggregate or a symmetric join must not consume
//! a re-emitting operator (they restore their own state, which would count the
//! re-emitted rows twice); a plan that does so does not checkpoint, and after a restart
//! its sources read from their start.

use crate::physical::{DataflowPlan, PhysicalPlan, SinkTarget, TopKStrategy};
use serde::{Deserialize, Serialize};
use sluice_catalogs::TableDescriptor;
use std::collections::{BTreeMap, BTreeSet};

/// How a checkpointed run cuts its data into epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barriers {
    /// No source has a watermark: processing-time epochs in the timestamps' high bits;
    /// the barrier of epoch `e` is the first time of epoch `e + 1`.
    Epochs,
    /// Every source has a watermark: timestamps are event times and each barrier is an
    /// event time chosen when the checkpoint is requested.
    EventTime,
}

/// How `plan` checkpoints, or why it cannot.
pub fn checkpoint_mode(plan: &DataflowPlan) -> Result<Barriers, String> {
    #[derive(Default)]
    struct Seen {
        watermarked: bool,
        plain: bool,
        windows: bool,
    }
    // `above`: an operator that restores its own state without rebuilding it (a window
    // aggregate, a symmetric join) consumes this node's output: a `Reduce` re-emits its
    // restored rows, which only a sink or a rebuilt operator may receive.
    fn walk(p: &PhysicalPlan, seen: &mut Seen, above: bool) -> Result<(), String> {
        match p {
            PhysicalPlan::Source { table, .. } => {
                if table.watermark.is_some() {
                    seen.watermarked = true;
                } else {
                    seen.plain = true;
                }
                Ok(())
            }
            PhysicalPlan::Calc { input, .. } => walk(input, seen, above),
            PhysicalPlan::Union { inputs } => inputs.iter().try_for_each(|i| walk(i, seen, above)),
            PhysicalPlan::WindowAssign { input, .. } => walk(input, seen, above),
            PhysicalPlan::WindowAggregate { input, .. } => {
                seen.windows = true;
                walk(input, seen, true)
            }
            // Restores its groups and re-emits them; rebuilt from its input instead when
            // that re-emits.
            PhysicalPlan::Reduce { input, .. } if !above => walk(input, seen, false),
            // Checkpointed as its inputs, replayed at a restore: re-emits its output.
            p if is_kept_as_inputs(p) && !above => p
                .inputs()
                .into_iter()
                .try_for_each(|i| walk(i, seen, false)),
            // Re-emits its restored tops, as `Reduce` does.
            PhysicalPlan::TopK {
                input,
                strategy: TopKStrategy::Monotonic,
                ..
            } if !above => walk(input, seen, false),
            // Restores without emitting anything, so any operator may consume it; its
            // inputs must not re-emit into it.
            PhysicalPlan::HashJoin { left, right, .. } if p.is_symmetric_join() => {
                walk(left, seen, true)?;
                walk(right, seen, true)
            }
            p if is_kept_as_inputs(p) => Err(format!(
                "the plan has an operator that re-emits its state when restored ({}) feeding \
                 a window aggregate or an append-only join, which restores its own state",
                kind(p)
            )),
            PhysicalPlan::Reduce { .. }
            | PhysicalPlan::TopK {
                strategy: TopKStrategy::Monotonic,
                ..
            } => Err(format!(
                "the plan has an operator that re-emits its state when restored ({}) feeding \
                 a window aggregate or an append-only join, which restores its own state",
                kind(p)
            )),
            PhysicalPlan::Values { .. } => Err("the plan has a VALUES input".into()),
            other => Err(format!(
                "the plan has a stateful operator ({}) whose state is not snapshotted yet",
                kind(other)
            )),
        }
    }
    let mut seen = Seen::default();
    for o in &plan.outputs {
        if !matches!(o.target, SinkTarget::Table(_)) {
            return Err("the job collects rows for a client".into());
        }
        walk(&o.plan, &mut seen, false)?;
    }
    match (seen.watermarked, seen.plain) {
        (true, false) => Ok(Barriers::EventTime),
        (true, true) => Err("some sources have watermarks and others do not".into()),
        _ if seen.windows => Err("a window aggregate over sources without watermarks".into()),
        _ => Ok(Barriers::Epochs),
    }
}

/// The operator name of a node (as EXPLAIN prints it).
pub fn kind(p: &PhysicalPlan) -> &'static str {
    match p {
        PhysicalPlan::Source { .. } => "Source",
        PhysicalPlan::Values { .. } => "Values",
        PhysicalPlan::Calc { .. } => "Calc",
        PhysicalPlan::WindowAssign { .. } => "WindowAssign",
        PhysicalPlan::SessionAssign { .. } => "SessionAssign",
        PhysicalPlan::WindowAggregate { .. } => "WindowAggregate",
        PhysicalPlan::Reduce { .. } => "Reduce",
        PhysicalPlan::HashJoin { .. } => "HashJoin",
        PhysicalPlan::TopN { .. } => "TopN",
        PhysicalPlan::TopK { .. } => "TopK",
        PhysicalPlan::Over { .. } => "Over",
        PhysicalPlan::Union { .. } => "Union",
    }
}

/// True for a node that keeps state between rows.
pub fn is_stateful(p: &PhysicalPlan) -> bool {
    matches!(
        p,
        PhysicalPlan::SessionAssign { .. }
            | PhysicalPlan::WindowAggregate { .. }
            | PhysicalPlan::Reduce { .. }
            | PhysicalPlan::HashJoin { .. }
            | PhysicalPlan::TopN { .. }
            | PhysicalPlan::TopK { .. }
            | PhysicalPlan::Over { .. }
    )
}

/// True for a stateful node whose state checkpoints snapshot (in a plan that checkpoints).
pub fn is_snapshotted(p: &PhysicalPlan) -> bool {
    matches!(
        p,
        PhysicalPlan::WindowAggregate { .. }
            | PhysicalPlan::Reduce { .. }
            | PhysicalPlan::TopK {
                strategy: TopKStrategy::Monotonic,
                ..
            }
    ) || p.is_symmetric_join()
        || is_kept_as_inputs(p)
}

/// True for an operator that re-emits its whole output at a restore and keeps its state
/// as a snapshot or as its inputs: `Reduce`, the monotonic `TopK` and those
/// [`is_kept_as_inputs`].
fn restores_by_reemitting(p: &PhysicalPlan) -> bool {
    matches!(
        p,
        PhysicalPlan::Reduce { .. }
            | PhysicalPlan::TopK {
                strategy: TopKStrategy::Monotonic,
                ..
            }
    ) || is_kept_as_inputs(p)
}

/// The stateful operators (their [`operator_id`]s) that a checkpointed run **rebuilds**
/// at a restore instead of restoring: each consumes, through stateless operators, an
/// operator that re-emits its whole output at a restore (`Reduce`, a Top-N, the arranged
/// join, `Over`, or another rebuilt one). Such an operator keeps no snapshot (nor its
/// inputs): it starts empty, takes the re-emitted rows as its input, and re-emits its
/// own output in turn — which only a sink or another rebuilt operator receives
/// ([`checkpoint_mode`] checks).
pub fn rebuilt_operators(plan: &DataflowPlan) -> BTreeSet<String> {
    // Whether `p`'s output is re-emitted at a restore; collects the rebuilt operators.
    fn reemits(p: &PhysicalPlan, out: &mut BTreeSet<String>) -> bool {
        let mut fed = false;
        for i in p.inputs() {
            fed |= reemits(i, out);
        }
        if restores_by_reemitting(p) {
            if fed {
                out.insert(operator_id(p));
            }
            true
        } else if is_stateful(p) {
            false
        } else {
            fed
        }
    }
    let mut out = BTreeSet::new();
    for o in &plan.outputs {
        reemits(&o.plan, &mut out);
    }
    out
}

/// True for a stateful operator checkpointed as its inputs (their net collections,
/// replayed into it at a restore, so that it re-emits its whole output): the arranged
/// `HashJoin`, the retracting `TopK`, `TopN` and `Over`.
pub fn is_kept_as_inputs(p: &PhysicalPlan) -> bool {
    match p {
        PhysicalPlan::HashJoin { .. } => !p.is_symmetric_join(),
        PhysicalPlan::TopK { strategy, .. } => *strategy == TopKStrategy::Retracting,
        PhysicalPlan::TopN { .. } | PhysicalPlan::Over { .. } => true,
        _ => false,
    }
}

/// The checkpoint key of input `input` of the operator whose key is `op` (one
/// [`is_kept_as_inputs`]).
pub fn input_key(op: &str, input: usize) -> String {
    format!("{op}/{input}")
}

/// The operator a checkpoint key belongs to: the key itself, or the operator of an
/// [`input_key`].
pub fn operator_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(op, _)| op)
}

/// 64-bit FNV-1a of `bytes`, as 16 hex digits (stable across builds and machines): the
/// hash of every id and fingerprint a checkpoint or a change plan stores.
pub fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A table with its secret option values blanked (an id must not depend on them).
fn without_secrets(t: &TableDescriptor) -> TableDescriptor {
    let mut t = t.clone();
    t.options = t.redacted_options();
    t
}

/// The identity of a source table: `<name>@<hash of connector and non-secret options>`.
pub fn source_id(table: &TableDescriptor) -> String {
    let options = without_secrets(table).options;
    let bytes = serde_json::to_vec(&(&table.connector, &options)).unwrap_or_default();
    format!("{}@{}", table.name, fnv(&bytes))
}

/// The identity of a stateful operator: `<kind>@<hash of its whole sub-plan>` (secret
/// option values of the tables below it left out).
pub fn operator_id(node: &PhysicalPlan) -> String {
    fn scrub(p: &mut PhysicalPlan) {
        match p {
            PhysicalPlan::Source { table, .. } => *table = without_secrets(table),
            // How the input reaches the state does not change the state.
            PhysicalPlan::Reduce { preaggregate, .. }
            | PhysicalPlan::WindowAggregate { preaggregate, .. } => *preaggregate = false,
            _ => {}
        }
        for i in p.inputs_mut() {
            scrub(i);
        }
    }
    let mut node = node.clone();
    scrub(&mut node);
    let bytes = serde_json::to_vec(&node).unwrap_or_default();
    format!("{}@{}", kind(&node), fnv(&bytes))
}

/// The key of the `n`-th read (from 0, in plan order) of the source whose id is `id`.
pub fn source_key(id: &str, n: usize) -> String {
    format!("{id}#{n}")
}

/// A source read of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSlot {
    /// Its checkpoint key ([`source_key`]).
    pub key: String,
    /// The table.
    pub table: TableDescriptor,
}

/// A stateful operator of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSlot {
    /// Its checkpoint key ([`operator_id`]).
    pub key: String,
    /// Its kind (`WindowAggregate`, `Reduce`, …).
    pub kind: &'static str,
    /// Its EXPLAIN PHYSICAL line (strategy and state bound).
    pub detail: String,
    /// True when checkpoints snapshot its state.
    pub snapshotted: bool,
}

/// The sources and stateful operators of a plan, as the renderer instantiates them: a
/// stateful sub-plan that occurs more than once is computed once (its sources and
/// state exist once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Source reads, in plan order.
    pub sources: Vec<SourceSlot>,
    /// Stateful operators, in plan order.
    pub operators: Vec<OperatorSlot>,
}

/// The [`Layout`] of `plan`.
pub fn layout(plan: &DataflowPlan) -> Layout {
    struct Walk<'a> {
        seen: Vec<&'a PhysicalPlan>,
        reads: BTreeMap<String, usize>,
        rebuilt: BTreeSet<String>,
        out: Layout,
    }
    impl<'a> Walk<'a> {
        fn node(&mut self, p: &'a PhysicalPlan) {
            if p.is_shareable() {
                if self.seen.contains(&p) {
                    return;
                }
                self.seen.push(p);
            }
            if let PhysicalPlan::Source { table, .. } = p {
                let id = source_id(table);
                let n = self.reads.entry(id.clone()).or_default();
                self.out.sources.push(SourceSlot {
                    key: source_key(&id, *n),
                    table: table.clone(),
                });
                *n += 1;
            }
            if is_stateful(p) {
                let detail = crate::explain::explain_physical(p)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                self.out.operators.push(OperatorSlot {
                    key: operator_id(p),
                    kind: kind(p),
                    detail,
                    snapshotted: is_snapshotted(p) && !self.rebuilt.contains(&operator_id(p)),
                });
            }
            for i in p.inputs() {
                self.node(i);
            }
        }
    }
    let mut w = Walk {
        seen: Vec::new(),
        reads: BTreeMap::new(),
        rebuilt: rebuilt_operators(plan),
        out: Layout::default(),
    };
    for o in &plan.outputs {
        w.node(&o.plan);
    }
    w.out
}

/// What a change does to one source, operator or sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// In both plans, and carried over: a source resumes at its checkpointed position,
    /// an operator keeps its snapshotted state, a sink is unchanged.
    Kept,
    /// In both plans, but starts from scratch: a source reads from its start, an
    /// operator's state is rebuilt or empty, a sink's definition changed.
    Reset,
    /// Only in the new plan.
    New,
    /// Only in the old plan: its state (or position) is dropped.
    Dropped,
}

/// One line of a [`ChangePlan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The table (sources, sinks) or operator kind (`WindowAggregate`, …).
    pub name: String,
    /// Its stable id (the checkpoint key).
    pub id: String,
    /// Its EXPLAIN PHYSICAL line (operators), or the connector (sources, sinks).
    pub detail: String,
    /// What happens to it.
    pub outcome: Outcome,
    /// Why, in a sentence.
    pub reason: String,
}

/// What replacing a job's plan `old` by `new` does, before anything runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePlan {
    /// True when the plans are identical (the restart continues exactly where the
    /// running instance stopped).
    pub identical: bool,
    /// Why the old plan does not checkpoint (`None`: it does).
    pub old_not_checkpointed: Option<String>,
    /// Why the new plan will not checkpoint (`None`: it will).
    pub new_not_checkpointed: Option<String>,
    /// Per source read.
    pub sources: Vec<Change>,
    /// Per stateful operator.
    pub operators: Vec<Change>,
    /// Per sink table.
    pub sinks: Vec<Change>,
}

/// The option keys whose values differ between two tables (secret ones by name only).
fn changed_options(a: &TableDescriptor, b: &TableDescriptor) -> Vec<String> {
    let (a, b) = (a.redacted_options(), b.redacted_options());
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Compares the plan a job runs with the plan it would run after a change.
pub fn change_plan(old: &DataflowPlan, new: &DataflowPlan) -> ChangePlan {
    let (lo, ln) = (layout(old), layout(new));
    let old_why = checkpoint_mode(old).err();
    let new_why = checkpoint_mode(new).err();
    let carried = old_why.is_none() && new_why.is_none();
    let no_state = |why: &str| format!("the job does not checkpoint ({why})");
    let not_carried = || match (&old_why, &new_why) {
        (Some(w), _) => no_state(w),
        (None, Some(w)) => format!("the new plan does not checkpoint ({w})"),
        (None, None) => String::new(),
    };

    // The id part of a source key (before `#<read>`).
    let id_of = |key: &str| key.rsplit_once('#').map_or(key, |(id, _)| id).to_string();
    let mut sources = Vec::new();
    let mut matched: BTreeSet<String> = BTreeSet::new();
    for s in &ln.sources {
        let before = lo.sources.iter().find(|o| o.key == s.key);
        let (outcome, reason) = match before {
            Some(_) if carried => (
                Outcome::Kept,
                "resumes at the position of the latest checkpoint".to_string(),
            ),
            Some(_) => (
                Outcome::Reset,
                format!("{}: it reads from its start", not_carried()),
            ),
            None => {
                // The same table under another id: its options changed.
                let changed = lo.sources.iter().find(|o| {
                    o.table.name == s.table.name
                        && id_of(&o.key) != id_of(&s.key)
                        && !matched.contains(&o.key)
                        && !ln.sources.iter().any(|n| n.key == o.key)
                });
                match changed {
                    Some(o) => {
                        matched.insert(o.key.clone());
                        (
                            Outcome::Reset,
                            format!(
                                "its table's options changed ({}): it reads from its start",
                                changed_options(&o.table, &s.table).join(", ")
                            ),
                        )
                    }
                    None if lo.sources.iter().any(|o| o.table.name == s.table.name) => (
                        Outcome::New,
                        "another read of the table: it reads from its start".into(),
                    ),
                    None => (Outcome::New, "a new input: it reads from its start".into()),
                }
            }
        };
        sources.push(Change {
            name: s.table.name.clone(),
            id: s.key.clone(),
            detail: s.table.connector.clone(),
            outcome,
            reason,
        });
    }
    for o in &lo.sources {
        if !ln.sources.iter().any(|s| s.key == o.key) && !matched.contains(&o.key) {
            sources.push(Change {
                name: o.table.name.clone(),
                id: o.key.clone(),
                detail: o.table.connector.clone(),
                outcome: Outcome::Dropped,
                reason: "no longer read: its position is dropped".into(),
            });
        }
    }
    let resumes = sources.iter().any(|s| s.outcome == Outcome::Kept);

    let mut operators = Vec::new();
    for op in &ln.operators {
        let before = lo.operators.iter().find(|o| o.key == op.key);
        let (outcome, reason) = match before {
            Some(_) if carried && op.snapshotted => (
                Outcome::Kept,
                "unchanged, with its input: keeps its state from the latest checkpoint".into(),
            ),
            Some(_) if !carried => (
                Outcome::Reset,
                format!(
                    "{}: rebuilt from its inputs, which read from their start",
                    not_carried()
                ),
            ),
            Some(_) => (
                Outcome::Reset,
                "keeps no snapshot: rebuilt at the restore from what its inputs re-emit"
                    .to_string(),
            ),
            None if resumes => (
                Outcome::New,
                "new or changed (itself or a plan below it): starts empty, so what its \
                 resuming inputs read before the restart is not in it (windows open at \
                 the restart lack those rows)"
                    .into(),
            ),
            None => (
                Outcome::New,
                "new or changed (itself or a plan below it): built from its inputs, which \
                 read from their start"
                    .into(),
            ),
        };
        operators.push(Change {
            name: op.kind.to_string(),
            id: op.key.clone(),
            detail: op.detail.clone(),
            outcome,
            reason,
        });
    }
    for op in &lo.operators {
        if !ln.operators.iter().any(|o| o.key == op.key) {
            operators.push(Change {
                name: op.kind.to_string(),
                id: op.key.clone(),
                detail: op.detail.clone(),
                outcome: Outcome::Dropped,
                reason: "no longer in the plan (or changed): its state is dropped".into(),
            });
        }
    }

    let sinks_of = |p: &DataflowPlan| -> Vec<TableDescriptor> {
        p.outputs
            .iter()
            .filter_map(|o| match &o.target {
                SinkTarget::Table(t) => Some(t.clone()),
                SinkTarget::Collect { .. } => None,
            })
            .collect()
    };
    let (so, sn) = (sinks_of(old), sinks_of(new));
    let mut sinks = Vec::new();
    for t in &sn {
        let (outcome, reason) = match so.iter().find(|o| o.name == t.name) {
            Some(o) => {
                let mut what = changed_options(o, t);
                if o.schema.types() != t.schema.types() {
                    what.insert(0, "columns".into());
                }
                if what.is_empty() {
                    (Outcome::Kept, "unchanged: output continues".to_string())
                } else {
                    let mut r = format!("changed ({})", what.join(", "));
                    if what.iter().any(|k| k == "path" || k == "topic") {
                        r.push_str(
                            ": new output goes to the new location; what was written \
                             stays where it is",
                        );
                    }
                    if what.iter().any(|k| k == "format" || k == "columns") {
                        r.push_str(": readers of the table see old and new records side by side");
                    }
                    (Outcome::Reset, r)
                }
            }
            None => (Outcome::New, "a new output".to_string()),
        };
        let reason = if new_why.is_some() {
            format!("{reason}; without checkpoints a restart writes its output again")
        } else {
            format!("{reason}; exactly-once through the checkpoint commit")
        };
        sinks.push(Change {
            name: t.name.clone(),
            id: t.name.clone(),
            detail: t.connector.clone(),
            outcome,
            reason,
        });
    }
    for o in &so {
        if !sn.iter().any(|t| t.name == o.name) {
            sinks.push(Change {
                name: o.name.clone(),
                id: o.name.clone(),
                detail: o.connector.clone(),
                outcome: Outcome::Dropped,
                reason: "no longer written: what it holds stays".into(),
            });
        }
    }
    let scrubbed = |p: &DataflowPlan| {
        let mut p = p.clone();
        p.for_each_table_mut(&mut |t| *t = without_secrets(t));
        p
    };
    ChangePlan {
        identical: scrubbed(old) == scrubbed(new),
        old_not_checkpointed: old_why,
        new_not_checkpointed: new_why,
        sources,
        operators,
        sinks,
    }
}
