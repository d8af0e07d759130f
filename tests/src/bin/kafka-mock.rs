//! `kafka-mock [--brokers N] TOPIC:PARTITIONS…`: librdkafka's in-process mock Kafka
//! cluster (the real protocol) as a process other processes can use. Creates the
//! topics, prints `bootstrap=<host:port,…>` on standard output, and serves until
//! standard input closes or it is killed.
//!
//! ```text
//! $ kafka-mock --brokers 3 orders:4 events:1
//! bootstrap=127.0.0.1:37531,127.0.0.1:41233,127.0.0.1:39119
//! ```

use rdkafka::mocking::MockCluster;
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    match serve(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka-mock: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: Vec<String>) -> Result<(), String> {
    let mut brokers = 1i32;
    let mut topics: Vec<(String, i32)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if a == "--brokers" {
            brokers = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or("--brokers needs a positive number")?;
        } else if a == "--help" || a == "-h" {
            println!("usage: kafka-mock [--brokers N] TOPIC:PARTITIONS…");
            return Ok(());
        } else {
            let (name, parts) = a
                .rsplit_once(':')
                .ok_or_else(|| format!("'{a}' is not TOPIC:PARTITIONS"))?;
            let parts: i32 =
                parts.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("'{a}': the partition count must be a positive number")
                })?;
            topics.push((name.to_string(), parts));
        }
    }
    let cluster =
        MockCluster::new(brokers).map_err(|e| format!("cannot start the mock cluster: {e}"))?;
    for (name, parts) in &topics {
        cluster
            .create_topic(name, *parts, 1)
            .map_err(|e| format!("cannot create topic '{name}': {e}"))?;
    }
    let mut out = std::io::stdout();
    writeln!(out, "bootstrap={}", cluster.bootstrap_servers())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))?;
    // Serve until standard input closes (or the process is killed).
    let mut sink = [0u8; 4096];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    drop(cluster);
    Ok(())
}
