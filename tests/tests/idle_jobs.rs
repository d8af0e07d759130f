//! Idle is not hung: a streaming job over a Kafka topic that receives no records stays
//! `running` under the real master for many hung-timeouts (set to 2 s here), with the
//! same instance and no restart; it reads records produced while it runs, and then
//! goes idle again. Before the fix, a running unbounded source always reported input
//! waiting, so the watchdog restarted such a job every progress-timeout and marked it
//! failed after its crash-loop limit. (librdkafka's mock cluster: the real Kafka
//! protocol; `sluice serve` and its worker processes are real processes.)

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};
use sluice_tests::{KafkaMock, MasterProcess};
use std::time::{Duration, Instant};

/// The watchdog's progress timeout in this test (seconds).
const PROGRESS_TIMEOUT_S: u64 = 2;

fn instances(m: &MasterProcess) -> Vec<Value> {
    m.get("/api/v1/jobs/quiet/instances")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Watches the job for `secs` seconds and fails at once if it stops being `running`
/// with the one instance `id` and no restart; returns the last instance view.
fn stays_running(m: &MasterProcess, id: &str, secs: u64) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    while Instant::now() < until {
        let job = m.get("/api/v1/jobs/quiet");
        assert_eq!(
            job["state"], "running",
            "the idle job left `running`: {job}"
        );
        assert_eq!(job["restarts"], 0, "the idle job was restarted: {job}");
        let all = instances(m);
        assert_eq!(all.len(), 1, "one instance only: {all:?}");
        assert_eq!(all[0]["id"], id, "the instance was replaced: {all:?}");
        last = all[0].clone();
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

#[test]
fn an_idle_kafka_job_stays_running_for_many_hung_timeouts() {
    let mock = KafkaMock::start(env!("CARGO_BIN_EXE_kafka-mock"), &["quiet:3"]);
    let dir = tempfile::tempdir().unwrap();
    let timeout = PROGRESS_TIMEOUT_S.to_string();
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &[
            "--progress-timeout-s",
            &timeout,
            "--heartbeat-timeout-s",
            "3",
            "--stall-timeout-s",
            "3",
            "--restart-backoff-ms",
            "100",
            "--max-restarts",
            "2",
        ],
    );
    let sql = format!(
        "CREATE TABLE quiet (id BIGINT, note VARCHAR) WITH (\n\
           'connector' = 'kafka', 'topic' = 'quiet', 'format' = 'json',\n\
           'properties.bootstrap.servers' = '{}', 'scan.startup.mode' = 'earliest-offset');\n\
         CREATE TABLE out (id BIGINT, note VARCHAR) WITH ('connector' = 'print');\n\
         INSERT INTO out SELECT id, note FROM quiet WHERE id >= 0;\n",
        mock.bootstrap
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "quiet", "sql": sql, "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    let id = m.wait_for(60, "the job running and its instance caught up", || {
        if m.get("/api/v1/jobs/quiet")["state"] != "running" {
            return None;
        }
        let all = instances(&m);
        let i = all.first()?;
        (i["state"] == "running" && i["input_waiting"] == false)
            .then(|| i["id"].as_str().unwrap().to_string())
    });

    // Idle for five progress-timeouts: the same instance keeps running.
    let idle = stays_running(&m, &id, 5 * PROGRESS_TIMEOUT_S);
    assert_eq!(idle["input_waiting"], false, "{idle}");

    // Records arrive: the job reads them, then is idle again.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &mock.bootstrap)
        .create()
        .unwrap();
    for i in 0..30 {
        let value = format!(r#"{{"id":{i},"note":"record {i}"}}"#);
        producer
            .send(BaseRecord::<str, str>::to("quiet").payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    m.wait_for(60, "the 30 records read", || {
        let all = instances(&m);
        let i = all.first()?;
        (i["rows_in"].as_u64() == Some(30)).then_some(())
    });
    let after = stays_running(&m, &id, 5 * PROGRESS_TIMEOUT_S);
    assert_eq!(after["input_waiting"], false, "{after}");
    assert_eq!(after["rows_in"], 30, "{after}");
    let log = m.log();
    assert!(
        !log.contains("hung"),
        "the master judged the job hung:\n{log}"
    );
}
