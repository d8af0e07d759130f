//! A continuous filesystem source (`'source.monitor-interval'`): files that appear in
//! the directory while the job runs are read; the job is stopped, restored from its
//! checkpoint at another worker count while more files arrive, and every row of every
//! file reaches the sink exactly once.

use sluice_catalogs::MemoryCatalog;
use sluice_compiler::instance::CheckpointConfig;
use sluice_connectors::Registry;
use sluice_dataflow::{run, ExecutionError, Progress, RunOptions};
use sluice_tests::committed_ids;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PER_FILE: i64 = 100;

/// Writes file `n` (ids `n*100 .. n*100+99`) atomically: elsewhere, then renamed in.
fn add_file(dir: &Path, staging: &Path, n: i64) {
    let mut text = String::from("id,v\n");
    for id in n * PER_FILE..(n + 1) * PER_FILE {
        text.push_str(&format!("{id},row {id}\n"));
    }
    let tmp = staging.join(format!("f{n:04}.csv"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(format!("f{n:04}.csv"))).unwrap();
}

/// Runs at `workers` while files `from..to` are added one by one, until every row of
/// files `0..to` is committed (then a little longer, so a duplicate would show), and
/// stops the run.
fn run_while_adding(
    plan: &sluice_compiler::DataflowPlan,
    workers: usize,
    (input, staging, out, chk): (&Path, &Path, &Path, &Path),
    from: i64,
    to: i64,
) {
    let progress = Arc::new(Progress::new());
    let ended = Arc::new(AtomicBool::new(false));
    let helper = {
        let (progress, ended) = (progress.clone(), ended.clone());
        let (input, staging, out): (PathBuf, PathBuf, PathBuf) =
            (input.into(), staging.into(), out.into());
        std::thread::spawn(move || {
            for n in from..to {
                add_file(&input, &staging, n);
                std::thread::sleep(Duration::from_millis(25));
            }
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline && !ended.load(Ordering::SeqCst) {
                if committed_ids(&out).len() as i64 >= to * PER_FILE {
                    std::thread::sleep(Duration::from_millis(300));
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            progress.cancel();
        })
    };
    let result = run(
        plan,
        RunOptions::new(Registry::builtin())
            .with_workers(workers)
            .with_checkpoint(CheckpointConfig {
                dir: chk.display().to_string(),
                interval_ms: 50,
                restore_from: None,
                retained: 2,
            }),
        progress,
    );
    ended.store(true, Ordering::SeqCst);
    helper.join().unwrap();
    assert!(
        matches!(result, Err(ExecutionError::Cancelled)),
        "{result:?}"
    );
}

#[test]
fn new_files_are_read_once_each_across_a_restore_at_another_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let (input, staging, out, chk) = (
        dir.path().join("in"),
        dir.path().join("staging"),
        dir.path().join("out"),
        dir.path().join("chk"),
    );
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    for n in 0..3 {
        add_file(&input, &staging, n);
    }
    let sql = format!(
        "CREATE TABLE src (id BIGINT, v VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', \
           'format' = 'csv', 'csv.header' = 'true', 'source.monitor-interval' = '40ms');\n\
         CREATE TABLE dst (id BIGINT, v VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, v FROM src WHERE id >= 0;\n",
        input.display(),
        out.display()
    );
    let plan = sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan;
    let paths = (
        input.as_path(),
        staging.as_path(),
        out.as_path(),
        chk.as_path(),
    );

    run_while_adding(&plan, 2, paths, 3, 12);
    let first = committed_ids(&out);
    assert_eq!(first.len() as i64, 12 * PER_FILE);
    assert!(first.values().all(|n| *n == 1));

    // Restored at 3 workers: the files read before are not read again.
    run_while_adding(&plan, 3, paths, 12, 20);
    let all = committed_ids(&out);
    assert_eq!(all.len() as i64, 20 * PER_FILE);
    let dups: Vec<_> = all.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(dups.is_empty(), "rows committed twice: {dups:?}");
    assert_eq!(*all.keys().next().unwrap(), 0);
    assert_eq!(*all.keys().last().unwrap(), 20 * PER_FILE - 1);
}
