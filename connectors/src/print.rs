//! Sinks for looking at or discarding results: `print` and `blackhole`.

use crate::options::check_keys;
use crate::values::{write_cell, TextStyle};
use crate::{Connector, ConnectorError, Result, Sink, WorkerContext};
use arrow::record_batch::RecordBatch;
use sluice_catalogs::{Schema, SinkKind, SourceCapabilities, TableDescriptor};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A shared, locked output stream.
type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// The `print` connector: every row written becomes a line `<table>> +I[v1, v2, …]`
/// (Flink style; a row an updating result retracts prints as `-D[…]`; NULL prints as `null`, timestamps as `YYYY-MM-DD HH:MM:SS.mmm`) on
/// stdout, or on the writer given to [`PrintConnector::to_writer`]. Lines are written
/// under a lock, a batch at a time, so workers' lines never interleave. Rows are
/// printed when written (the print sink is not transactional). Option:
/// `print-identifier` replaces the table name as the prefix; `print-format` = `json`
/// writes each cell as JSON (strings quoted, NULL as `null`), so that `[…]` is a JSON
/// array (what the master's query preview reads back); `text` (the default) as above.
#[derive(Clone)]
pub struct PrintConnector {
    out: SharedWriter,
}

impl Default for PrintConnector {
    fn default() -> Self {
        PrintConnector::to_writer(std::io::stdout())
    }
}

impl PrintConnector {
    /// A print connector writing to `w` instead of stdout (e.g. for tests).
    pub fn to_writer(w: impl Write + Send + 'static) -> Self {
        PrintConnector {
            out: Arc::new(Mutex::new(Box::new(w))),
        }
    }
}

impl Connector for PrintConnector {
    fn name(&self) -> &'static str {
        "print"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        _schema: &Schema,
    ) -> Result<SourceCapabilities> {
        check_keys("print", options, &["print-identifier", "print-format"], &[])?;
        match options.get("print-format").map(String::as_str) {
            None | Some("text") | Some("json") => {}
            Some(other) => {
                return Err(ConnectorError::Config(format!(
                    "print: 'print-format' must be 'text' or 'json', not '{other}'"
                )))
            }
        }
        Ok(SourceCapabilities {
            sink: SinkKind::Changelog,
            ..Default::default()
        })
    }

    fn create_sink(&self, table: &TableDescriptor, _ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        self.validate(&table.options, &table.schema)?;
        Ok(Box::new(PrintSink {
            prefix: format!(
                "{}> ",
                table.option("print-identifier").unwrap_or(&table.name)
            ),
            out: self.out.clone(),
            style: match table.option("print-format") {
                Some("json") => TextStyle::Json,
                _ => TextStyle::Plain,
            },
        }))
    }
}

struct PrintSink {
    prefix: String,
    style: TextStyle,
    out: SharedWriter,
}

impl PrintSink {
    /// Prints every row of `batch` as `<prefix><op>[v1, v2, …]`.
    fn print(&mut self, batch: &RecordBatch, op: &str) -> Result<()> {
        let mut text = String::new();
        for row in 0..batch.num_rows() {
            text.push_str(&self.prefix);
            text.push_str(op);
            text.push('[');
            for (c, col) in batch.columns().iter().enumerate() {
                if c > 0 {
                    text.push_str(", ");
                }
                if !write_cell(&mut text, col.as_ref(), row, self.style) {
                    text.push_str("null");
                }
            }
            text.push_str("]\n");
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| ConnectorError::Internal("print output lock poisoned".into()))?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| ConnectorError::Io(format!("print: {e}")))
    }
}

impl Sink for PrintSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.print(batch, "+I")
    }

    /// A retracted row of an updating result: `-D[…]`.
    fn write_deletes(&mut self, batch: &RecordBatch) -> Result<()> {
        self.print(batch, "-D")
    }

    fn prepare_commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }

    fn commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }
}

/// The `blackhole` connector: discards rows, counting them (all of its sinks share
/// the count, see [`BlackholeConnector::rows_written`]). It takes no options.
#[derive(Clone, Default)]
pub struct BlackholeConnector {
    rows: Arc<AtomicU64>,
}

impl BlackholeConnector {
    /// Rows written to all sinks of this connector so far.
    pub fn rows_written(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
}

impl Connector for BlackholeConnector {
    fn name(&self) -> &'static str {
        "blackhole"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        _schema: &Schema,
    ) -> Result<SourceCapabilities> {
        check_keys("blackhole", options, &[], &[])?;
        Ok(SourceCapabilities {
            sink: SinkKind::Discard,
            ..Default::default()
        })
    }

    fn create_sink(&self, table: &TableDescriptor, _ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        self.validate(&table.options, &table.schema)?;
        Ok(Box::new(BlackholeSink {
            rows: self.rows.clone(),
        }))
    }
}

struct BlackholeSink {
    rows: Arc<AtomicU64>,
}

impl Sink for BlackholeSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn discards(&self) -> bool {
        true
    }

    fn count(&mut self, rows: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
    }

    fn prepare_commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }

    fn commit(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::table;
    use crate::Registry;
    use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
    use sluice_catalogs::{Field, SqlType};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn batch(schema: &Schema) -> RecordBatch {
        RecordBatch::try_new(
            schema.to_arrow(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a b"), None])),
                Arc::new(TimestampMillisecondArray::from(vec![Some(1500), None])),
            ],
        )
        .unwrap()
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("x", SqlType::BigInt),
            Field::new("s", SqlType::Varchar),
            Field::new("t", SqlType::Timestamp),
        ])
    }

    #[test]
    fn print_writes_flink_style_lines() {
        let buf = Buf::default();
        let p = PrintConnector::to_writer(buf.clone());
        let t = table("print", schema(), &[]);
        let mut threads = Vec::new();
        for w in 0..4 {
            let mut sink = p
                .create_sink(
                    &t,
                    WorkerContext {
                        worker: w,
                        workers: 4,
                    },
                )
                .unwrap();
            let b = batch(&schema());
            threads.push(std::thread::spawn(move || {
                for _ in 0..50 {
                    sink.write(&b).unwrap();
                }
                sink.prepare_commit(0).unwrap();
                sink.commit(0).unwrap();
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 400);
        for pair in lines.chunks(2) {
            assert_eq!(pair[0], "t> +I[1, a b, 1970-01-01 00:00:01.500]");
            assert_eq!(pair[1], "t> +I[null, null, null]");
        }
        let t = table("print", schema(), &[("print-identifier", "out")]);
        let mut sink = p
            .create_sink(
                &t,
                WorkerContext {
                    worker: 0,
                    workers: 1,
                },
            )
            .unwrap();
        sink.write(&batch(&schema()).slice(1, 1)).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with("\nout> +I[null, null, null]\n"));
        assert!(p
            .validate(&table("print", schema(), &[("x", "1")]).options, &schema())
            .is_err());
        // JSON cells: each line's `[…]` is a JSON array.
        let t = table("print", schema(), &[("print-format", "json")]);
        let mut sink = p
            .create_sink(
                &t,
                WorkerContext {
                    worker: 0,
                    workers: 1,
                },
            )
            .unwrap();
        sink.write(&batch(&schema())).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with(
                "t> +I[1, \"a b\", \"1970-01-01 00:00:01.500\"]\nt> +I[null, null, null]\n"
            ),
            "{text}"
        );
        assert!(p
            .validate(
                &table("print", schema(), &[("print-format", "xml")]).options,
                &schema()
            )
            .is_err());
    }

    #[test]
    fn blackhole_counts_and_registry_knows_every_connector() {
        let b = BlackholeConnector::default();
        let t = table("blackhole", schema(), &[]);
        let mut s1 = b
            .create_sink(
                &t,
                WorkerContext {
                    worker: 0,
                    workers: 2,
                },
            )
            .unwrap();
        let mut s2 = b
            .create_sink(
                &t,
                WorkerContext {
                    worker: 1,
                    workers: 2,
                },
            )
            .unwrap();
        s1.write(&batch(&schema())).unwrap();
        s2.write(&batch(&schema())).unwrap();
        s2.commit(1).unwrap();
        assert_eq!(b.rows_written(), 4);
        assert!(b
            .create_source(
                &t,
                &[0],
                &[],
                WorkerContext {
                    worker: 0,
                    workers: 1
                }
            )
            .is_err());
        assert!(b
            .validate(
                &table("blackhole", schema(), &[("path", "x")]).options,
                &schema()
            )
            .is_err());
        let r = Registry::builtin();
        for name in [
            "filesystem",
            "kafka",
            "nexmark",
            "datagen",
            "print",
            "blackhole",
        ] {
            assert_eq!(r.get(name).unwrap().name(), name);
        }
        let e = r.get("pulsar").err().unwrap().to_string();
        assert!(e.contains("blackhole") && e.contains("nexmark"), "{e}");
    }
}
