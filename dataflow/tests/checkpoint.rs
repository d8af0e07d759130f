//! Checkpoints in process: a run checkpoints periodically and commits each epoch; a run
//! stopped in the middle (cancelled: nothing of its open epoch is committed) and
//! started again over the same checkpoint directory restores the positions, finishes
//! or aborts what was staged, and the output holds every row exactly once — at the
//! same worker count and, for keyed positions, at another.

use sluice_catalogs::MemoryCatalog;
use sluice_compiler::instance::CheckpointConfig;
use sluice_connectors::{ObjectDir, Registry};
use sluice_dataflow::checkpoint::{all_records, checkpointable};
use sluice_dataflow::{run, ExecutionError, Progress, RunOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn plan(out: &Path, rows: u64, rate: u64) -> sluice_compiler::DataflowPlan {
    let sql = format!(
        "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '{rows}', \
           'rows-per-second' = '{rate}', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
           'fields.v.min' = '0', 'fields.v.max' = '9');\n\
         CREATE TABLE dst (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, v * 10 FROM src WHERE id % 2 = 0;\n",
        out.display()
    );
    sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap()
        .plan
}

/// id → occurrences over every committed part file (staged ones are skipped).
fn committed_ids(dir: &Path) -> BTreeMap<i64, usize> {
    let mut ids = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines().skip(1) {
            let id: i64 = line.split(',').next().unwrap().parse().unwrap();
            *ids.entry(id).or_default() += 1;
        }
    }
    ids
}

fn staged(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("_staging"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn options(workers: usize, chk: &Path, interval_ms: u64) -> RunOptions {
    RunOptions::new(Registry::builtin())
        .with_workers(workers)
        .with_batch_size(64)
        .with_checkpoint(CheckpointConfig {
            dir: chk.display().to_string(),
            interval_ms,
            restore_from: None,
            retained: 2,
        })
}

#[test]
fn a_checkpointed_run_commits_every_epoch_and_records_its_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let p = plan(&out, 4000, 8000);
    assert_eq!(checkpointable(&p), None);
    run(&p, options(2, &chk, 50), Arc::new(Progress::new())).unwrap();
    let ids = committed_ids(&out);
    assert_eq!(ids.len(), 2000);
    assert!(ids.iter().all(|(id, n)| id % 2 == 0 && *n == 1));
    assert_eq!(staged(&out), 0);
    let records = all_records(&ObjectDir::open(chk.to_str().unwrap()).unwrap()).unwrap();
    assert!(records.len() >= 3, "only {} checkpoints", records.len());
    // Epochs increase by one; each record's `from` is the previous record's positions;
    // the files each made visible are disjoint and together the whole output.
    let mut files = Vec::new();
    for w in records.windows(2) {
        assert_eq!(w[1].epoch, w[0].epoch + 1);
        assert_eq!(w[1].from, w[0].sources);
    }
    for r in &records {
        assert_eq!(r.workers, 2);
        for pending in r.sinks.values().flatten() {
            for pair in pending.as_array().unwrap() {
                files.push(pair[1].as_str().unwrap().to_string());
            }
        }
    }
    let n = files.len();
    files.sort();
    files.dedup();
    assert_eq!(files.len(), n, "a file made visible twice");
    let on_disk = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .count();
    assert_eq!(on_disk, n);
    let last = records.last().unwrap();
    // Positions are keyed by the source's stable id (table, options, read number).
    let (key, positions) = last.sources.iter().next().unwrap();
    assert!(key.starts_with("src@") && key.ends_with("#0"), "{key}");
    assert_eq!(positions.len(), 2);
}

fn interrupted_then_restored(first_workers: usize, second_workers: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    // 6000 rows at 6000/s: about a second; stop it half way.
    let p = plan(&out, 6000, 6000);
    let progress = Arc::new(Progress::new());
    let stopper = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            progress.cancel();
        })
    };
    let first = run(&p, options(first_workers, &chk, 60), progress);
    stopper.join().unwrap();
    assert!(matches!(first, Err(ExecutionError::Cancelled)), "{first:?}");
    let partial = committed_ids(&out);
    assert!(!partial.is_empty(), "nothing committed before the stop");
    assert!(partial.len() < 3000, "the whole input was committed");
    assert!(partial.values().all(|n| *n == 1));

    let second = run(
        &p,
        options(second_workers, &chk, 60),
        Arc::new(Progress::new()),
    );
    second.map_err(|e| e.to_string())?;
    let ids = committed_ids(&out);
    let expected: Vec<i64> = (1..=6000).filter(|i| i % 2 == 0).collect();
    assert_eq!(ids.keys().copied().collect::<Vec<_>>(), expected);
    let dups: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(staged(&out), 0);
    Ok(())
}

#[test]
fn a_stopped_run_restores_and_the_output_is_exactly_once() {
    interrupted_then_restored(1, 1).unwrap();
    interrupted_then_restored(3, 3).unwrap();
}

#[test]
fn plans_say_why_they_do_not_checkpoint_and_an_aggregate_over_a_join_does() {
    let compile = |sql: &str| {
        sluice_compiler::compile(sql, &MemoryCatalog::new(), &Registry::builtin())
            .unwrap()
            .plan
    };
    let src = "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n";
    // The aggregate is rebuilt at a restore from what the outer join re-emits.
    let p = compile(&format!(
        "{src}CREATE TABLE dst (v BIGINT, n BIGINT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO dst SELECT a.v, COUNT(b.id) FROM src a LEFT JOIN src b ON a.id = b.v GROUP BY a.v;\n"
    ));
    assert_eq!(checkpointable(&p), None);
    assert_eq!(sluice_compiler::state::rebuilt_operators(&p).len(), 1);
    // Rows collected for a client are not a job's output.
    let p = compile(&format!("{src}SELECT v, COUNT(*) FROM src GROUP BY v;\n"));
    let why = checkpointable(&p).unwrap();
    assert!(why.contains("collects rows"), "{why}");
}

#[test]
fn sealed_secrets_are_opened_with_the_key_file_and_only_with_it() {
    use sluice_catalogs::sealed::SealKey;
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '3');\n\
               CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'csv', \
                 's3.secret-access-key' = 'CANARY-open');\n\
               INSERT INTO dst SELECT id FROM src;\n";
    let plan = sluice_compiler::compile(sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap()
        .plan;
    let key_file = dir.path().join("secret.key");
    let key = SealKey::load_or_create(&key_file, || [3u8; 32]).unwrap();
    let mut sealed = plan.clone();
    sealed.for_each_table_mut(&mut |t| {
        key.seal_options(&mut t.options, || [1u8; 12]);
    });
    assert!(!serde_json::to_string(&sealed)
        .unwrap()
        .contains("CANARY-open"));
    let mut opened = sealed.clone();
    sluice_dataflow::open_secrets(&mut opened, Some(key_file.to_str().unwrap())).unwrap();
    assert_eq!(opened, plan);
    // Another key: a clear error naming the table and option, never the value.
    let other = dir.path().join("other.key");
    SealKey::load_or_create(&other, || [4u8; 32]).unwrap();
    let mut wrong = sealed.clone();
    let err = sluice_dataflow::open_secrets(&mut wrong, Some(other.to_str().unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dst") && err.contains("s3.secret-access-key"),
        "{err}"
    );
    assert!(!err.contains("CANARY"));
}

/// Two runs of one job over the same checkpoint store at once (a stale master's
/// instance and a new one): each epoch is decided by exactly one of them, the other
/// stops as superseded without committing, and the output holds every row exactly once.
#[test]
fn a_second_run_over_the_same_checkpoints_is_fenced_and_nothing_is_written_twice() {
    for delay_ms in [150, 400, 700] {
        let dir = tempfile::tempdir().unwrap();
        let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
        // 6000 rows at 5000/s: over a second; the second run starts while the first
        // is at some checkpoint.
        let p = plan(&out, 6000, 5000);
        let first = {
            let (p, chk) = (p.clone(), chk.clone());
            std::thread::spawn(move || run(&p, options(2, &chk, 40), Arc::new(Progress::new())))
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        let second = run(&p, options(2, &chk, 40), Arc::new(Progress::new()));
        let first = first.join().unwrap();
        let outcomes = [&first, &second];
        let superseded = outcomes
            .iter()
            .filter(|r| matches!(r, Err(ExecutionError::Superseded { .. })))
            .count();
        let ok = outcomes.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            (ok, superseded),
            (1, 1),
            "after {delay_ms} ms: first {first:?}, second {second:?}"
        );
        let loser = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
        let message = loser.to_string();
        assert!(
            message.contains("another instance") && message.contains("without committing"),
            "{message}"
        );
        let ids = committed_ids(&out);
        let expected: Vec<i64> = (1..=6000).filter(|i| i % 2 == 0).collect();
        let dups: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).take(5).collect();
        assert!(dups.is_empty(), "after {delay_ms} ms: duplicates {dups:?}");
        assert_eq!(ids.keys().copied().collect::<Vec<_>>(), expected);
        // Every epoch has one record, written by one run.
        let records = all_records(&ObjectDir::open(chk.to_str().unwrap()).unwrap()).unwrap();
        assert!(records.windows(2).all(|w| w[1].epoch == w[0].epoch + 1));
        assert!(records.iter().all(|r| !r.run.is_empty()));
    }
}

/// `retained`: the snapshots of the newest N checkpoints stay (so each of them can be
/// restored), older ones are deleted; here for an unbounded aggregate, which
/// checkpoints its groups.
#[test]
fn the_newest_retained_checkpoints_keep_their_snapshots() {
    for retained in [1u32, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
        let sql = format!(
            "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '3000', \
               'rows-per-second' = '6000', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
               'fields.v.min' = '0', 'fields.v.max' = '9');\n\
             CREATE TABLE dst (v BIGINT, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
             INSERT INTO dst SELECT v, COUNT(*) FROM src GROUP BY v;\n",
            out.display()
        );
        let p = sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
            .unwrap()
            .plan;
        assert_eq!(checkpointable(&p), None);
        let mut options = options(2, &chk, 40);
        if let Some(c) = options.checkpoint.as_mut() {
            c.retained = retained;
        }
        run(&p, options, Arc::new(Progress::new())).unwrap();
        let d = ObjectDir::open(chk.to_str().unwrap()).unwrap();
        let records = all_records(&d).unwrap();
        assert!(records.len() > 4, "only {} checkpoints", records.len());
        let newest: Vec<u64> = records[records.len() - retained as usize..]
            .iter()
            .filter(|r| !r.state.is_empty())
            .map(|r| r.epoch)
            .collect();
        let mut kept: Vec<u64> = d
            .list()
            .unwrap()
            .iter()
            .filter_map(|n| sluice_dataflow::checkpoint::state_object_epoch(n))
            .collect();
        kept.sort_unstable();
        kept.dedup();
        assert_eq!(kept, newest, "retained {retained}");
    }
}
