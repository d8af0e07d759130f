//! What a change of a job's SQL keeps (`sluice_compiler::state::change_plan`): one test
//! per outcome — kept, reset, new, dropped, a changed sink — over scripts a user would
//! write, and the stable ids they rest on.

mod common;

use common::AnyConnector;
use sluice_catalogs::MemoryCatalog;
use sluice_compiler::state::{change_plan, layout, ChangePlan, Outcome};
use sluice_compiler::DataflowPlan;

const CLICKS: &str = "CREATE TABLE clicks (uid BIGINT, amount BIGINT, ts TIMESTAMP(3), \
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'kafka', 'topic' = 'clicks', \
    'properties.bootstrap.servers' = 'k:9092', 'properties.sasl.password' = 'SECRET', 'format' = 'json');\n";

const SINK: &str = "CREATE TABLE per_user (w TIMESTAMP(3), uid BIGINT, n BIGINT) \
    WITH ('connector' = 'filesystem', 'path' = '/out/per_user', 'format' = 'csv');\n";

const WINDOWED: &str = "INSERT INTO per_user SELECT window_start, uid, COUNT(*) \
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
    GROUP BY window_start, window_end, uid;\n";

fn plan(sql: &str) -> DataflowPlan {
    sluice_compiler::compile(sql, &MemoryCatalog::new(), &AnyConnector)
        .unwrap_or_else(|e| panic!("{e}\n{sql}"))
        .plan
}

fn outcomes(items: &[sluice_compiler::state::Change]) -> Vec<(String, Outcome)> {
    items.iter().map(|c| (c.name.clone(), c.outcome)).collect()
}

fn base() -> DataflowPlan {
    plan(&format!("{CLICKS}{SINK}{WINDOWED}"))
}

#[test]
fn an_unchanged_job_keeps_everything() {
    let p: ChangePlan = change_plan(&base(), &base());
    assert!(p.identical);
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(outcomes(&p.sources), vec![("clicks".into(), Outcome::Kept)]);
    assert_eq!(
        outcomes(&p.operators),
        vec![("WindowAggregate".into(), Outcome::Kept)]
    );
    assert_eq!(outcomes(&p.sinks), vec![("per_user".into(), Outcome::Kept)]);
}

#[test]
fn a_new_output_keeps_the_existing_aggregate_and_reads_its_source_again_from_the_start() {
    let extra = "CREATE TABLE big (uid BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', \
        'path' = '/out/big', 'format' = 'csv');\n\
        INSERT INTO big SELECT uid, amount FROM clicks WHERE amount > 990;\n";
    let new = plan(&format!("{CLICKS}{SINK}{WINDOWED}{extra}"));
    let p = change_plan(&base(), &new);
    assert!(!p.identical);
    // The first read of clicks resumes; the new statement's read is a second one.
    assert_eq!(
        outcomes(&p.sources),
        vec![
            ("clicks".into(), Outcome::Kept),
            ("clicks".into(), Outcome::New)
        ]
    );
    assert!(p.sources[1].id.ends_with("#1"), "{:?}", p.sources[1]);
    assert_eq!(
        outcomes(&p.operators),
        vec![("WindowAggregate".into(), Outcome::Kept)]
    );
    assert_eq!(
        outcomes(&p.sinks),
        vec![
            ("per_user".into(), Outcome::Kept),
            ("big".into(), Outcome::New)
        ]
    );
}

#[test]
fn a_changed_aggregate_is_new_and_the_old_one_is_dropped() {
    let changed = WINDOWED.replace("INTERVAL '10' SECOND", "INTERVAL '20' SECOND");
    let p = change_plan(&base(), &plan(&format!("{CLICKS}{SINK}{changed}")));
    assert_eq!(outcomes(&p.sources), vec![("clicks".into(), Outcome::Kept)]);
    assert_eq!(
        outcomes(&p.operators),
        vec![
            ("WindowAggregate".into(), Outcome::New),
            ("WindowAggregate".into(), Outcome::Dropped)
        ]
    );
    assert!(
        p.operators[0].reason.contains("starts empty"),
        "{:?}",
        p.operators[0]
    );
}

#[test]
fn a_changed_source_option_resets_its_position_and_names_the_option_not_its_value() {
    let moved = CLICKS
        .replace("'topic' = 'clicks'", "'topic' = 'clicks-v2'")
        .replace("SECRET", "OTHER-SECRET");
    let p = change_plan(&base(), &plan(&format!("{moved}{SINK}{WINDOWED}")));
    assert_eq!(
        outcomes(&p.sources),
        vec![("clicks".into(), Outcome::Reset)]
    );
    let reason = &p.sources[0].reason;
    // A secret is not part of a source's identity (rotating a password keeps the
    // position): only the topic counts.
    assert!(
        reason.contains("topic") && !reason.contains("sasl"),
        "{reason}"
    );
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    // Below the aggregate: its input changed, so it starts empty.
    assert_eq!(p.operators[0].outcome, Outcome::New);
}

#[test]
fn a_secret_change_alone_keeps_every_id() {
    let other = CLICKS.replace("SECRET", "ROTATED");
    let (a, b) = (base(), plan(&format!("{other}{SINK}{WINDOWED}")));
    assert_eq!(layout(&a), {
        let mut l = layout(&b);
        // Same keys; the descriptors differ only in the secret.
        for (x, y) in l.sources.iter_mut().zip(layout(&a).sources) {
            x.table = y.table;
        }
        l
    });
    let p = change_plan(&a, &b);
    assert!(p.identical);
}

#[test]
fn a_changed_sink_path_and_a_dropped_output_are_reported() {
    let moved = SINK.replace("/out/per_user", "/out/per_user_v2");
    let p = change_plan(&base(), &plan(&format!("{CLICKS}{moved}{WINDOWED}")));
    assert_eq!(
        outcomes(&p.sinks),
        vec![("per_user".into(), Outcome::Reset)]
    );
    assert!(
        p.sinks[0].reason.contains("path") && p.sinks[0].reason.contains("new location"),
        "{:?}",
        p.sinks[0]
    );
    let extra = "CREATE TABLE big (uid BIGINT) WITH ('connector' = 'filesystem', \
        'path' = '/out/big', 'format' = 'csv');\nINSERT INTO big SELECT uid FROM clicks;\n";
    let two = plan(&format!("{CLICKS}{SINK}{WINDOWED}{extra}"));
    let p = change_plan(&two, &base());
    assert_eq!(
        outcomes(&p.sinks),
        vec![
            ("per_user".into(), Outcome::Kept),
            ("big".into(), Outcome::Dropped)
        ]
    );
    assert_eq!(
        outcomes(&p.sources),
        vec![
            ("clicks".into(), Outcome::Kept),
            ("clicks".into(), Outcome::Dropped)
        ]
    );
}

#[test]
fn a_job_that_does_not_checkpoint_resets_everything_and_says_why() {
    // A watermarked and a plain source: no barrier suits both.
    let joined = "CREATE TABLE plain (uid BIGINT, amount BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'plain', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json');\n\
        CREATE TABLE pairs (a BIGINT, b BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'pairs', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'a');\n\
        INSERT INTO pairs SELECT x.uid, COUNT(*) FROM clicks x LEFT JOIN plain y ON x.uid = y.amount \
        GROUP BY x.uid;\n";
    let p = change_plan(
        &plan(&format!("{CLICKS}{joined}")),
        &plan(&format!("{CLICKS}{joined}")),
    );
    let why = p.old_not_checkpointed.clone().unwrap();
    assert!(why.contains("watermarks"), "{why}");
    assert!(p.sources.iter().all(|s| s.outcome == Outcome::Reset));
    assert_eq!(
        outcomes(&p.operators),
        vec![
            ("Reduce".into(), Outcome::Reset),
            ("HashJoin".into(), Outcome::Reset)
        ]
    );
    assert!(p.operators[0].reason.contains("does not checkpoint"));
}

#[test]
fn joins_and_top_ns_are_snapshotted_and_kept() {
    let joined = "CREATE TABLE pairs (a BIGINT, b BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'pairs', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'a');\n\
        INSERT INTO pairs SELECT x.uid, y.amount FROM clicks x JOIN clicks y ON x.uid = y.amount;\n";
    let p = change_plan(
        &plan(&format!("{CLICKS}{joined}")),
        &plan(&format!("{CLICKS}{joined}")),
    );
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(
        outcomes(&p.operators),
        vec![("HashJoin".into(), Outcome::Kept)]
    );
    let tops = "CREATE TABLE tops (uid BIGINT, amount BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'tops', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'uid');\n\
        INSERT INTO tops SELECT uid, amount FROM (SELECT uid, amount, ROW_NUMBER() OVER \
        (PARTITION BY uid ORDER BY amount DESC) AS rn FROM clicks) WHERE rn <= 2;\n";
    let p = change_plan(
        &plan(&format!("{CLICKS}{tops}")),
        &plan(&format!("{CLICKS}{tops}")),
    );
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(outcomes(&p.operators), vec![("TopK".into(), Outcome::Kept)]);
    // An outer join (arranged) and a global Top-N are checkpointed as their inputs.
    let outer = "CREATE TABLE pairs (a BIGINT, b BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'pairs', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'a');\n\
        INSERT INTO pairs SELECT x.uid, y.amount FROM clicks x LEFT JOIN clicks y ON x.uid = y.amount;\n";
    let p = change_plan(
        &plan(&format!("{CLICKS}{outer}")),
        &plan(&format!("{CLICKS}{outer}")),
    );
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(
        outcomes(&p.operators),
        vec![("HashJoin".into(), Outcome::Kept)]
    );
    // A Top-N of an aggregate: the aggregate keeps its state and re-emits it at a
    // restore; the Top-N keeps none and is rebuilt from what it re-emits.
    let nested = "CREATE TABLE best (uid BIGINT, n BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'best', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'uid');\n\
        INSERT INTO best SELECT uid, n FROM (SELECT uid, n, ROW_NUMBER() OVER (ORDER BY n DESC) AS rn \
        FROM (SELECT uid, COUNT(*) AS n FROM clicks GROUP BY uid)) WHERE rn <= 3;\n";
    let (old, new) = (
        plan(&format!("{CLICKS}{nested}")),
        plan(&format!("{CLICKS}{nested}")),
    );
    assert_eq!(sluice_compiler::state::rebuilt_operators(&new).len(), 1);
    let p = change_plan(&old, &new);
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(
        outcomes(&p.operators),
        vec![
            ("TopK".into(), Outcome::Reset),
            ("Reduce".into(), Outcome::Kept)
        ]
    );
    assert!(
        p.operators[0].reason.contains("rebuilt"),
        "{:?}",
        p.operators[0]
    );
}

#[test]
fn an_unbounded_aggregate_is_snapshotted_and_kept_and_one_above_it_rebuilt() {
    let totals = "CREATE TABLE totals (uid BIGINT, n BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'totals', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'uid');\n\
        INSERT INTO totals SELECT uid, COUNT(DISTINCT amount) FROM clicks GROUP BY uid;\n";
    let p = change_plan(
        &plan(&format!("{CLICKS}{totals}")),
        &plan(&format!("{CLICKS}{totals}")),
    );
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(
        outcomes(&p.operators),
        vec![("Reduce".into(), Outcome::Kept)]
    );
    // An aggregate of an aggregate: the inner one re-emits its restored rows, so the
    // outer one keeps no state of its own and rebuilds it from them.
    let nested = "CREATE TABLE hist (n BIGINT, users BIGINT) WITH ('connector' = 'kafka', \
        'topic' = 'hist', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'n');\n\
        INSERT INTO hist SELECT n, COUNT(*) FROM (SELECT uid, COUNT(*) AS n FROM clicks GROUP BY uid) GROUP BY n;\n";
    let p = change_plan(
        &plan(&format!("{CLICKS}{nested}")),
        &plan(&format!("{CLICKS}{nested}")),
    );
    assert_eq!(p.old_not_checkpointed, None);
    assert_eq!(
        outcomes(&p.operators),
        vec![
            ("Reduce".into(), Outcome::Reset),
            ("Reduce".into(), Outcome::Kept)
        ]
    );
}
