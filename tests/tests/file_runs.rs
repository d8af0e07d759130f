//! `sluice run` writing and reading files across runs, as a user re-runs a bounded
//! job: CSV without a header by default (Flink's format), `INSERT INTO` appending under
//! names no later run can collide with, `INSERT OVERWRITE` replacing the output, no
//! `_staging/` left behind, and an unterminated quote costing one record, not the file.

use sluice_tests::{metrics, sluice, stderr, stdout};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The committed part files directly in `dir`, sorted.
fn parts(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    v.sort();
    v
}

/// `n,s` of the table `out` at `dir`, counted by `sluice run`.
fn count(dir: &Path, out: &Path) -> String {
    let script = write(
        dir,
        "count.sql",
        &format!(
            "CREATE TABLE o (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
             SELECT COUNT(*) AS n, SUM(id) AS s FROM o;\n",
            out.display()
        ),
    );
    let o = sluice(dir, &["run", &script, "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().nth(1).unwrap_or_default().to_string()
}

#[test]
fn rerunning_a_bounded_job_appends_with_insert_into_and_replaces_with_insert_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // Headerless, as Flink writes CSV: every line is a row (1..=100).
    for f in 0..4 {
        let text: String = (1..=25).map(|i| format!("{}\n", f * 25 + i)).collect();
        std::fs::write(input.join(format!("f{f}.csv")), text).unwrap();
    }
    let out = dir.path().join("out");
    let job = |verb: &str| {
        format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
             CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
             {verb} dst SELECT id FROM src;\n",
            input.display(),
            out.display()
        )
    };
    let into = write(dir.path(), "into.sql", &job("INSERT INTO"));
    let over = write(dir.path(), "over.sql", &job("INSERT OVERWRITE"));
    let run = |script: &str, workers: &str| {
        let o = sluice(dir.path(), &["run", script, "--workers", workers]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!out.join("_staging").exists(), "an empty _staging/ is left");
    };

    run(&into, "4");
    let first = parts(&out);
    assert_eq!(first.len(), 4, "{first:?}");
    assert_eq!(count(dir.path(), &out), "100,5050");
    // Again at fewer workers: the first run's files are all still there, unchanged in
    // name, beside the second's (an append; nothing overwritten half-way).
    run(&into, "2");
    let both = parts(&out);
    assert_eq!(both.len(), 6, "{both:?}");
    assert!(first.iter().all(|f| both.contains(f)), "{both:?}");
    assert_eq!(count(dir.path(), &out), "200,10100");
    // INSERT OVERWRITE: exactly the new result.
    run(&over, "3");
    let last = parts(&out);
    assert_eq!(last.len(), 3, "{last:?}");
    assert!(last.iter().all(|f| !both.contains(f)), "{last:?}");
    assert_eq!(count(dir.path(), &out), "100,5050");
}

#[test]
fn insert_overwrite_into_an_append_only_sink_is_refused_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "bad.sql",
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '3');\n\
         CREATE TABLE p (id BIGINT) WITH ('connector' = 'print');\n\
         INSERT OVERWRITE p SELECT id FROM src;\n",
    );
    let o = sluice(dir.path(), &["run", &script]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("line 3, column 18"), "{err}");
    assert!(
        err.contains("connector 'print' can only be appended to"),
        "{err}"
    );
}

#[test]
fn an_unterminated_quote_costs_one_record_with_policy_skip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("q");
    std::fs::create_dir_all(&data).unwrap();
    let mut text = String::new();
    for i in 1..=1000 {
        if i == 2 {
            text.push_str("2,\"no closing quote\n");
        } else {
            text.push_str(&format!("{i},n{i}\n"));
        }
    }
    std::fs::write(data.join("a.csv"), text).unwrap();
    let script = write(
        dir.path(),
        "q.sql",
        &format!(
            "CREATE TABLE q (id BIGINT, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', \
               'format' = 'csv', 'format.on-error' = 'skip');\n\
             SELECT COUNT(*) AS n, SUM(id) AS s FROM q;\n",
            data.display()
        ),
    );
    let o = sluice(
        dir.path(),
        &["run", &script, "--format", "csv", "--metrics"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("n,s\n999,{}\n", 500_500 - 2));
    assert_eq!(metrics(&o)["bad_records"], 1);
}
