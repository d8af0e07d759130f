//! Plan-before-apply through the real `sluice serve`: `POST /api/v1/jobs/{name}/plan`
//! says what a change of a running job's SQL keeps, `PATCH` with the plan's id applies
//! exactly that plan (and refuses an outdated one), `?dry_run=true` changes nothing, the
//! CLI prints the plan, and the applied change does what the plan said: the source the
//! plan marked `kept` resumes at its checkpointed position (no row is read twice).

use serde_json::{json, Value};
use sluice_tests::MasterProcess;
use std::collections::BTreeMap;
use std::path::Path;

fn sql(out: &Path, filter: &str) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n\
         CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', \
           'rows-per-second' = '400', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
           'fields.v.min' = '0', 'fields.v.max' = '9');\n\
         CREATE TABLE dst (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', \
           'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, v FROM src{filter};\n",
        out.display()
    )
}

/// id → (occurrences, v) over every committed part file.
fn committed(dir: &Path) -> BTreeMap<i64, (usize, i64)> {
    let mut ids = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return ids;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines().skip(1) {
            let mut f = line.split(',');
            let id: i64 = f.next().unwrap().parse().unwrap();
            let v: i64 = f.next().unwrap().parse().unwrap();
            let slot = ids.entry(id).or_insert((0, v));
            slot.0 += 1;
        }
    }
    ids
}

fn outcomes(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_planned_change_is_applied_exactly_as_planned_and_keeps_what_it_said() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let m = MasterProcess::start(&dir.path().join("data"), &["--restart-backoff-ms", "200"]);
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "p", "sql": sql(&out, ""), "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    m.wait_for(60, "committed output", || {
        (committed(&out).len() > 200).then_some(())
    });

    // The plan: nothing stops, the source and the sink are kept, the plan names the
    // checkpoint the restart restores from and the source's position there.
    let change = json!({"sql": sql(&out, " WHERE v > 2")});
    let (s, plan) = m.request("POST", "/api/v1/jobs/p/plan", Some(change.clone()));
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["changes"], json!(["SQL changed"]));
    assert_eq!(outcomes(&plan, "sources"), vec!["kept"]);
    assert_eq!(outcomes(&plan, "sinks"), vec!["kept"]);
    assert_eq!(outcomes(&plan, "operators"), Vec::<String>::new());
    assert!(plan["sources"][0]["position"].is_array(), "{plan}");
    let epoch = plan["latest_checkpoint"]["epoch"].as_u64().unwrap();
    assert!(
        plan["restart"]
            .as_str()
            .unwrap()
            .contains("from checkpoint"),
        "{plan}"
    );
    assert_eq!(m.get("/api/v1/jobs/p")["version"], 1);
    // The checkpoint list: which run wrote each, its size, whether it can be restored.
    let commits = m.get("/api/v1/jobs/p/commits");
    let newest = commits["commits"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(!newest["run"].as_str().unwrap().is_empty(), "{newest}");
    assert!(newest["size_bytes"].as_u64().unwrap() > 0, "{newest}");
    assert_eq!(newest["restorable"], true, "{newest}");
    let took = commits["commits"].as_array().unwrap()[0]["duration_ms"].as_i64();
    assert!(took.is_some_and(|ms| ms >= 0), "{commits}");
    let plan_id = plan["plan_id"].as_str().unwrap().to_string();

    // The CLI prints the same plan.
    let script = dir.path().join("v2.sql");
    std::fs::write(&script, sql(&out, " WHERE v > 2")).unwrap();
    let o = m.cli(&["job", "plan", "p", script.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("kept") && text.contains(&plan_id) && text.contains("--plan-id"),
        "{text}"
    );

    // A dry run answers the job as it would be and changes nothing.
    let (s, dry) = m.request(
        "PATCH",
        "/api/v1/jobs/p?dry_run=true",
        Some(json!({"resources": {"parallelism": 3}})),
    );
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["version"], 2);
    assert_eq!(dry["resources"]["parallelism"], 3);
    assert_eq!(m.get("/api/v1/jobs/p")["version"], 1);

    // The plan's id applies only that change to that version.
    let mut other = json!({"sql": sql(&out, " WHERE v > 5")});
    other["plan_id"] = json!(plan_id);
    let (s, v) = m.request("PATCH", "/api/v1/jobs/p", Some(other));
    assert_eq!(s, 409, "{v}");
    let mut apply = change.clone();
    apply["plan_id"] = json!(plan_id);
    let (s, v) = m.request("PATCH", "/api/v1/jobs/p", Some(apply.clone()));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 2);
    let (s, v) = m.request("PATCH", "/api/v1/jobs/p", Some(apply));
    assert_eq!(s, 409, "an outdated plan must be refused: {v}");
    assert!(v["message"].as_str().unwrap().contains("outdated"), "{v}");

    // What the plan said: the source resumed where version 1 stopped. Every id is
    // written once; ids after version 1's last one have v > 2 only.
    let before = committed(&out);
    let last_v1 = *before.keys().max().unwrap();
    m.wait_for(60, "version 2's output", || {
        let now = committed(&out);
        (now.keys().filter(|id| **id > last_v1 + 400).count() > 50).then_some(())
    });
    let ids = committed(&out);
    let twice: Vec<_> = ids.iter().filter(|(_, (n, _))| *n > 1).take(5).collect();
    assert!(twice.is_empty(), "read twice after the change: {twice:?}");
    let late: Vec<_> = ids
        .iter()
        .filter(|(id, (_, v))| **id > last_v1 + 400 && *v <= 2)
        .take(5)
        .collect();
    assert!(
        late.is_empty(),
        "version 2 wrote rows its filter drops: {late:?}"
    );
    // The new instance logged what it took over.
    let log = m.newest_instance_log("p");
    assert!(
        log.contains("1 of 1 source reads resume"),
        "the plan said the source is kept (epoch {epoch}): {log}"
    );
}
