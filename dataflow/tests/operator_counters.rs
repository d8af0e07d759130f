//! Per-operator row counters (what the console's plan graph shows as rates): one per
//! EXPLAIN PHYSICAL line of each output, keyed `<output>.<line>`, counting the rows each
//! operator emitted, all workers together.

use sluice_catalogs::MemoryCatalog;
use sluice_compiler::instance::operator_key;
use sluice_connectors::Registry;
use sluice_dataflow::{run, Progress, RunOptions};
use std::sync::Arc;

#[test]
fn every_plan_operator_counts_its_rows_under_its_explain_line() {
    let sql = "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', \
                 'number-of-rows' = '1000', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
                 'fields.v.min' = '0', 'fields.v.max' = '9');\n\
               CREATE TABLE dst (v BIGINT, n BIGINT) WITH ('connector' = 'blackhole');\n\
               CREATE TABLE raw (id BIGINT) WITH ('connector' = 'blackhole');\n\
               INSERT INTO dst SELECT v, COUNT(*) FROM src WHERE id > 500 GROUP BY v;\n\
               INSERT INTO raw SELECT id FROM src;\n";
    let plan = sluice_compiler::compile(sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap()
        .plan;
    for workers in [1, 3] {
        let progress = Arc::new(Progress::new());
        let mut options = RunOptions::new(Registry::builtin());
        options.workers = workers;
        run(&plan, options, progress.clone()).unwrap();
        let counted = progress.snapshot().operators;
        // One counter per line of each output's physical plan, nothing else.
        let mut want = Vec::new();
        let mut texts = Vec::new();
        for (i, o) in plan.outputs.iter().enumerate() {
            let text = sluice_compiler::explain::explain_physical(&o.plan);
            want.extend((0..text.lines().count()).map(|n| operator_key(i, n)));
            texts.push(text);
        }
        want.sort();
        assert_eq!(
            counted.keys().cloned().collect::<Vec<_>>(),
            want,
            "{texts:?}"
        );
        // The first output: its source emits the 500 rows its pushed-down filter keeps
        // (the last line), the aggregate on top (line 0) at least one row per group.
        let lines = texts[0].lines().count();
        assert!(texts[0]
            .lines()
            .last()
            .unwrap()
            .trim_start()
            .starts_with("Source"));
        assert_eq!(counted[&operator_key(0, lines - 1)], 500, "{counted:?}");
        assert!(counted[&operator_key(0, 0)] >= 10, "{counted:?}");
        // The second: its source, all 1,000.
        let lines = texts[1].lines().count();
        assert_eq!(counted[&operator_key(1, lines - 1)], 1000, "{counted:?}");
    }
}
