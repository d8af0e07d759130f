//! The `datagen` connector: rows of seeded pseudo-random or sequential values.
//!
//! Row `i`'s value in a column is a pure function of (seed, column index in the table,
//! `i`), so the output is the same for any worker count: worker `w` of `n` produces
//! the rows `i ≡ w (mod n)`, in increasing order.
//!
//! Options: `number-of-rows` (the source is bounded when set), `rows-per-second`
//! (wall-clock pacing, across all workers), `seed` (default 0), and per column
//! `fields.<col>.kind` (`random`, default, or `sequence`), `fields.<col>.min` /
//! `fields.<col>.max` (numbers; DATE as `YYYY-MM-DD` or days, TIMESTAMP as text or
//! epoch milliseconds), `fields.<col>.length` (VARCHAR length, default 10) and
//! `fields.<col>.null-rate` (0..1, default 0).
//!
//! A `sequence` column is `min + i` (wrapping to `min` after `max` when a max is set;
//! a VARCHAR sequence is that number as text; a BOOLEAN one alternates). A `random`
//! column is uniform in `[min, max]` (defaults: the type's range for INT and BIGINT,
//! `[0, 1)` for DOUBLE, `[0, 10^(p-s))` for DECIMAL, 1970-01-01 to 2024-10-04 for DATE,
//! the 24 hours from 2015-07-15 for TIMESTAMP, `[0, 86400000]` ms for INTERVAL;
//! VARCHARs are `length` lower-case letters).

use crate::options::{check_keys, parsed};
use crate::values::{parse_decimal, parse_text, ColumnBuilder, Value};
use crate::{Connector, ConnectorError, Result, Source, SourcePoll, WorkerContext};
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema, SchemaRef};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sluice_catalogs::{Schema, SourceCapabilities, SqlType, TableDescriptor};
use sluice_expr::ScalarExpr;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// How a column's values are made.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Random,
    Sequence,
}

/// The generator of one column.
#[derive(Clone, Debug)]
struct ColumnGen {
    ty: SqlType,
    kind: Kind,
    /// Integer-like bounds (INT, BIGINT, DECIMAL unscaled, DATE days, TIMESTAMP ms, INTERVAL ms).
    min: i128,
    max: Option<i128>,
    /// DOUBLE bounds.
    fmin: f64,
    fmax: Option<f64>,
    length: usize,
    null_rate: f64,
    salt: u64,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const FIELD_KEYS: &[&str] = &["kind", "min", "max", "length", "null-rate"];

impl ColumnGen {
    fn parse(
        options: &BTreeMap<String, String>,
        name: &str,
        col: usize,
        ty: SqlType,
        seed: u64,
    ) -> Result<ColumnGen> {
        let key = |k: &str| {
            options
                .keys()
                .find(|o| {
                    o.strip_prefix("fields.")
                        .and_then(|r| r.strip_suffix(k))
                        .and_then(|r| r.strip_suffix('.'))
                        .is_some_and(|c| c.eq_ignore_ascii_case(name))
                })
                .cloned()
        };
        let get = |k: &str| key(k).and_then(|k| options.get(&k).cloned().map(|v| (k, v)));
        let kind = match get("kind") {
            None => Kind::Random,
            Some((_, v)) if v.eq_ignore_ascii_case("random") => Kind::Random,
            Some((_, v)) if v.eq_ignore_ascii_case("sequence") => Kind::Sequence,
            Some((k, v)) => {
                return Err(ConnectorError::Config(format!(
                    "option '{k}' = '{v}' is invalid: expected 'random' or 'sequence'"
                )))
            }
        };
        let bound = |which: &str| -> Result<Option<i128>> {
            let Some((k, v)) = get(which) else {
                return Ok(None);
            };
            let bad =
                |e: String| ConnectorError::Config(format!("option '{k}' = '{v}' is invalid: {e}"));
            let int = |s: &str| s.trim().parse::<i128>().map_err(|e| bad(e.to_string()));
            match ty {
                SqlType::Decimal { precision, scale } => parse_decimal(v.trim(), precision, scale)
                    .map(Some)
                    .map_err(bad),
                SqlType::Date | SqlType::Timestamp => match int(&v) {
                    Ok(x) => Ok(Some(x)),
                    Err(_) => match parse_text(&v, ty).map_err(bad)? {
                        Value::Int(x) => Ok(Some(i128::from(x))),
                        _ => Err(bad("not a bound".into())),
                    },
                },
                SqlType::Int | SqlType::BigInt | SqlType::Interval | SqlType::Varchar => {
                    let x = int(&v)?;
                    let (lo, hi) = if ty == SqlType::Int {
                        (i128::from(i32::MIN), i128::from(i32::MAX))
                    } else {
                        (i128::from(i64::MIN), i128::from(i64::MAX))
                    };
                    if x < lo || x > hi {
                        return Err(bad(format!("out of range for {ty}")));
                    }
                    Ok(Some(x))
                }
                SqlType::Double => Ok(None),
                _ => Err(bad(format!("a {ty} column has no bounds"))),
            }
        };
        let fbound = |which: &str| -> Result<Option<f64>> {
            match get(which) {
                Some((k, v)) if ty == SqlType::Double => {
                    v.trim().parse::<f64>().map(Some).map_err(|e| {
                        ConnectorError::Config(format!("option '{k}' = '{v}' is invalid: {e}"))
                    })
                }
                _ => Ok(None),
            }
        };
        let (min, max) = (bound("min")?, bound("max")?);
        let (fmin, fmax) = (fbound("min")?, fbound("max")?);
        let (dmin, dmax): (i128, i128) = match ty {
            SqlType::Int => (i32::MIN.into(), i32::MAX.into()),
            SqlType::BigInt => (i64::MIN.into(), i64::MAX.into()),
            SqlType::Decimal { precision, scale } => {
                let _ = scale;
                (0, 10i128.pow(u32::from(precision).min(38)) - 1)
            }
            SqlType::Date => (0, 20_000),
            SqlType::Timestamp => (1_436_918_400_000, 1_436_918_400_000 + 86_400_000),
            SqlType::Interval => (0, 86_400_000),
            _ => (0, i128::from(i64::MAX)),
        };
        let (min, max) = match kind {
            Kind::Random => (min.unwrap_or(dmin), Some(max.unwrap_or(dmax))),
            Kind::Sequence => (
                min.unwrap_or(if ty == SqlType::Timestamp { dmin } else { 0 }),
                max,
            ),
        };
        let fmin = fmin.unwrap_or(0.0);
        let fmax = match kind {
            Kind::Random => Some(fmax.unwrap_or(1.0)),
            Kind::Sequence => fmax,
        };
        if max.is_some_and(|m| m < min) || fmax.is_some_and(|m| m < fmin) {
            return Err(ConnectorError::Config(format!(
                "column '{name}': 'min' is larger than 'max'"
            )));
        }
        let length = match get("length") {
            None => 10,
            Some((k, v)) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|l| *l <= 1 << 20)
                .ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "option '{k}' = '{v}' is invalid: expected a length up to 1048576"
                    ))
                })?,
        };
        let null_rate = match get("null-rate") {
            None => 0.0,
            Some((k, v)) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "option '{k}' = '{v}' is invalid: expected a number in 0..1"
                    ))
                })?,
        };
        Ok(ColumnGen {
            ty,
            kind,
            min,
            max,
            fmin,
            fmax,
            length,
            null_rate,
            salt: splitmix64(seed ^ splitmix64(col as u64 + 1)),
        })
    }

    /// The value of row `i`; `buf` holds a generated string.
    fn value<'a>(&self, i: u64, buf: &'a mut String) -> Value<'a> {
        let h = splitmix64(self.salt ^ splitmix64(i));
        if self.null_rate > 0.0 {
            let u = (splitmix64(h ^ 0x4E55_4C4C) >> 11) as f64 / (1u64 << 53) as f64;
            if u < self.null_rate {
                return Value::Null;
            }
        }
        let int = match self.kind {
            Kind::Sequence => match self.max {
                Some(max) => self.min + (i128::from(i) % (max - self.min + 1)),
                None => self.min + i128::from(i),
            },
            Kind::Random => {
                let span = (self.max.unwrap_or(self.min) - self.min + 1) as u128;
                let r = (u128::from(h) << 64 | u128::from(splitmix64(h))) % span;
                self.min + r as i128
            }
        };
        match self.ty {
            SqlType::Null => Value::Null,
            SqlType::Boolean => Value::Bool(match self.kind {
                Kind::Sequence => i % 2 == 1,
                Kind::Random => h & 1 == 1,
            }),
            SqlType::Double => Value::Float(match (self.kind, self.fmax) {
                (Kind::Sequence, Some(max)) => {
                    let span = (max - self.fmin).floor() + 1.0;
                    self.fmin + (i as f64 % span)
                }
                (Kind::Sequence, None) => self.fmin + i as f64,
                (Kind::Random, max) => {
                    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
                    self.fmin + u * (max.unwrap_or(1.0) - self.fmin)
                }
            }),
            SqlType::Decimal { .. } => Value::Decimal(int),
            SqlType::Varchar => {
                buf.clear();
                match self.kind {
                    Kind::Sequence => buf.push_str(&int.to_string()),
                    Kind::Random => {
                        let mut rng = SmallRng::seed_from_u64(h);
                        for _ in 0..self.length {
                            buf.push(rng.gen_range(b'a'..=b'z') as char);
                        }
                    }
                }
                Value::Str(Cow::Borrowed(buf.as_str()))
            }
            SqlType::Int
            | SqlType::BigInt
            | SqlType::Date
            | SqlType::Timestamp
            | SqlType::Interval => {
                let (lo, hi) = match self.ty {
                    SqlType::Int | SqlType::Date => (i128::from(i32::MIN), i128::from(i32::MAX)),
                    _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
                };
                // A sequence past the type's range wraps around within it.
                let v = if int > hi || int < lo {
                    lo + (int - lo).rem_euclid(hi - lo + 1)
                } else {
                    int
                };
                Value::Int(v as i64)
            }
        }
    }
}

/// Validated datagen options.
#[derive(Clone, Debug)]
struct DatagenOptions {
    rows: Option<u64>,
    rows_per_second: Option<f64>,
    columns: Vec<ColumnGen>,
}

impl DatagenOptions {
    fn parse(options: &BTreeMap<String, String>, schema: &Schema) -> Result<DatagenOptions> {
        check_keys(
            "datagen",
            options,
            &[
                "number-of-rows",
                "rows-per-second",
                "seed",
                "format.on-error",
                "scan.late-records",
                "dead-letter.path",
                "dead-letter.topic",
            ],
            &["fields.", "dead-letter.properties."],
        )?;
        for k in options.keys().filter(|k| k.starts_with("fields.")) {
            let rest = &k["fields.".len()..];
            let ok = FIELD_KEYS.iter().any(|f| {
                rest.strip_suffix(f)
                    .and_then(|c| c.strip_suffix('.'))
                    .is_some_and(|c| schema.index_of(c).is_some())
            });
            if !ok {
                return Err(ConnectorError::Config(format!(
                    "unknown option '{k}' for connector 'datagen': expected 'fields.<column>.<{}>' for a column of the table ({})",
                    FIELD_KEYS.join("|"),
                    schema.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let seed = parsed::<u64>(options, "seed")?.unwrap_or(0);
        let rows_per_second = parsed::<f64>(options, "rows-per-second")?;
        if rows_per_second.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(ConnectorError::Config(
                "option 'rows-per-second' must be a positive number".into(),
            ));
        }
        let columns = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| ColumnGen::parse(options, &f.name, i, f.ty, seed))
            .collect::<Result<Vec<_>>>()?;
        Ok(DatagenOptions {
            rows: parsed(options, "number-of-rows")?,
            rows_per_second,
            columns,
        })
    }
}

/// The `datagen` connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct DatagenConnector;

impl Connector for DatagenConnector {
    fn name(&self) -> &'static str {
        "datagen"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities> {
        let o = DatagenOptions::parse(options, schema)?;
        Ok(SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: o.rows.is_some(),
            ..Default::default()
        })
    }

    fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<Box<dyn Source>> {
        crate::check_ctx(ctx)?;
        crate::check_projection(table, projection)?;
        let o = DatagenOptions::parse(&table.options, &table.schema)?;
        let schema = Arc::new(ArrowSchema::new(
            projection
                .iter()
                .map(|&p| {
                    let f = &table.schema.fields[p];
                    ArrowField::new(&f.name, f.ty.to_arrow(), true)
                })
                .collect::<Vec<_>>(),
        ));
        let source: Box<dyn Source> = Box::new(DatagenSource {
            columns: projection.iter().map(|&p| o.columns[p].clone()).collect(),
            rows: o.rows,
            rows_per_second: o.rows_per_second,
            schema,
            worker: ctx.worker as u64,
            workers: ctx.workers as u64,
            next: 0,
            started: None,
            emitted_since_start: 0,
        });
        Ok(crate::filter::with_filters(
            source, table, projection, filters,
        ))
    }
}

/// One worker's share of a datagen table.
struct DatagenSource {
    columns: Vec<ColumnGen>,
    rows: Option<u64>,
    rows_per_second: Option<f64>,
    schema: SchemaRef,
    worker: u64,
    workers: u64,
    /// How many of this worker's rows were produced (row index = worker + next * workers).
    next: u64,
    started: Option<Instant>,
    emitted_since_start: u64,
}

impl Source for DatagenSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
        let mut budget = max_rows.max(1) as u64;
        if let Some(total) = self.rows {
            let mine = total.saturating_sub(self.worker).div_ceil(self.workers);
            budget = budget.min(mine.saturating_sub(self.next));
            if budget == 0 {
                return Ok(SourcePoll::Finished);
            }
        }
        if let Some(rate) = self.rows_per_second {
            let start = *self.started.get_or_insert_with(Instant::now);
            let allowed =
                (start.elapsed().as_secs_f64() * rate / self.workers as f64).floor() as u64 + 1;
            budget = budget.min(allowed.saturating_sub(self.emitted_since_start));
            if budget == 0 {
                return Ok(SourcePoll::Idle);
            }
        }
        let n = budget as usize;
        let mut builders: Vec<ColumnBuilder> = self
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c.ty, n))
            .collect();
        let mut buf = String::new();
        for k in 0..budget {
            let i = self.worker + (self.next + k) * self.workers;
            for (b, c) in builders.iter_mut().zip(&self.columns) {
                b.append(&c.value(i, &mut buf));
            }
        }
        self.next += budget;
        self.emitted_since_start += budget;
        let cols = builders.iter_mut().map(ColumnBuilder::finish).collect();
        let batch = crate::format::make_batch(&self.schema, cols, n)?;
        Ok(SourcePoll::Batch {
            batch,
            bad: Vec::new(),
        })
    }

    fn position(&self) -> serde_json::Value {
        crate::counter("next", self.next, self.workers)
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        self.next = crate::counter_position(position, "next", "datagen", self.workers)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{read_workers, table};
    use crate::Registry;
    use sluice_catalogs::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", SqlType::BigInt),
            Field::new("k", SqlType::Int),
            Field::new("d", SqlType::Double),
            Field::new("s", SqlType::Varchar),
            Field::new("ts", SqlType::Timestamp),
            Field::new(
                "m",
                SqlType::Decimal {
                    precision: 6,
                    scale: 2,
                },
            ),
            Field::new("b", SqlType::Boolean),
            Field::new("dt", SqlType::Date),
        ])
    }

    fn opts<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut o = vec![
            ("number-of-rows", "1000"),
            ("seed", "42"),
            ("fields.id.kind", "sequence"),
            ("fields.id.min", "100"),
            ("fields.k.min", "-5"),
            ("fields.k.max", "5"),
            ("fields.k.null-rate", "0.25"),
            ("fields.d.min", "10"),
            ("fields.d.max", "20"),
            ("fields.s.length", "7"),
            ("fields.ts.min", "2020-01-01 00:00:00"),
            ("fields.ts.max", "1577836801000"),
            ("fields.m.min", "-1.5"),
            ("fields.m.max", "1.5"),
            ("fields.dt.kind", "sequence"),
            ("fields.dt.min", "2020-01-01"),
            ("fields.dt.max", "2020-01-03"),
        ];
        o.extend_from_slice(extra);
        o
    }

    fn all(t: &TableDescriptor, workers: usize, max_rows: usize) -> Vec<Vec<Option<String>>> {
        let proj: Vec<usize> = (0..t.schema.len()).collect();
        read_workers(&Registry::builtin(), t, &proj, workers, max_rows)
    }

    #[test]
    fn values_respect_kinds_bounds_and_null_rates() {
        let t = table("datagen", schema(), &opts(&[]));
        let rows = all(&t, 1, 300);
        assert_eq!(rows.len(), 1000);
        let mut nulls = 0;
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r[0], Some((100 + i).to_string()));
            match &r[1] {
                None => nulls += 1,
                Some(k) => assert!((-5..=5).contains(&k.parse::<i32>().unwrap())),
            }
            let d: f64 = r[2].as_ref().unwrap().parse().unwrap();
            assert!((10.0..=20.0).contains(&d));
            let s = r[3].as_ref().unwrap();
            assert!(s.len() == 7 && s.bytes().all(|b| b.is_ascii_lowercase()));
            let ts = r[4].as_ref().unwrap();
            assert!(
                ts == "2020-01-01 00:00:00.000" || ts.starts_with("2020-01-01 00:00:0"),
                "{ts}"
            );
            let m: f64 = r[5].as_ref().unwrap().parse().unwrap();
            assert!((-1.5..=1.5).contains(&m));
            assert_eq!(r[5].as_ref().unwrap().split('.').nth(1).unwrap().len(), 2);
            let days = ["2020-01-01", "2020-01-02", "2020-01-03"];
            assert_eq!(r[7].as_deref(), Some(days[i % 3]));
        }
        assert!((180..320).contains(&nulls), "{nulls} nulls");
        // Random values do vary.
        let distinct: std::collections::BTreeSet<_> = rows.iter().map(|r| r[3].clone()).collect();
        assert!(distinct.len() > 990);
    }

    #[test]
    fn output_is_independent_of_worker_count_and_projection() {
        let t = table("datagen", schema(), &opts(&[]));
        let mut one = all(&t, 1, 1000);
        one.sort();
        for workers in 2..=4 {
            let mut many = all(&t, workers, 37);
            assert_eq!(many.len(), 1000);
            many.sort();
            assert_eq!(many, one, "{workers} workers");
        }
        let proj = read_workers(&Registry::builtin(), &t, &[3, 0], 1, 1000);
        let full = all(&t, 1, 1000);
        for (p, f) in proj.iter().zip(&full) {
            assert_eq!(p, &vec![f[3].clone(), f[0].clone()]);
        }
        let other = all(
            &table("datagen", schema(), &opts(&[("seed", "43")])),
            1,
            1000,
        );
        assert_ne!(other, full);
    }

    #[test]
    fn pacing_and_unbounded() {
        let t = table(
            "datagen",
            Schema::new(vec![Field::new("x", SqlType::BigInt)]),
            &[("rows-per-second", "0.5")],
        );
        assert!(
            !DatagenConnector
                .validate(&t.options, &t.schema)
                .unwrap()
                .bounded
        );
        let mut src = DatagenConnector
            .create_source(
                &t,
                &[0],
                &[],
                WorkerContext {
                    worker: 0,
                    workers: 1,
                },
            )
            .unwrap();
        match src.poll(100).unwrap() {
            SourcePoll::Batch { batch, .. } => assert_eq!(batch.num_rows(), 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(src.poll(100).unwrap(), SourcePoll::Idle));
    }

    #[test]
    fn a_position_resumes_only_at_the_worker_count_it_counts_for() {
        let t = table("datagen", schema(), &opts(&[]));
        let source = |worker: usize, workers: usize| {
            DatagenConnector
                .create_source(&t, &[0], &[], WorkerContext { worker, workers })
                .unwrap()
        };
        let mut a = source(1, 2);
        assert!(matches!(a.poll(7).unwrap(), SourcePoll::Batch { .. }));
        let at = a.position();
        assert_eq!(at, serde_json::json!({"next": 7, "workers": 2}));
        assert!(source(1, 2).seek(&at).is_ok());
        let e = source(0, 3).seek(&at).unwrap_err().to_string();
        assert!(e.contains("cannot resume at 3 workers"), "{e}");
        // A position written before the worker count was recorded.
        assert!(source(0, 3).seek(&serde_json::json!({"next": 7})).is_ok());
    }

    #[test]
    fn options_are_validated() {
        let v = |o: &[(&str, &str)]| {
            let t = table("datagen", schema(), o);
            DatagenConnector
                .validate(&t.options, &t.schema)
                .map_err(|e| e.to_string())
        };
        assert!(v(&opts(&[])).unwrap().bounded);
        assert!(v(&[("fields.nope.kind", "random")])
            .unwrap_err()
            .contains("nope"));
        assert!(v(&[("fields.id.colour", "red")]).is_err());
        assert!(v(&[("rows", "1")]).unwrap_err().contains("number-of-rows"));
        assert!(v(&[("fields.id.kind", "zigzag")]).is_err());
        assert!(v(&[("fields.k.min", "3"), ("fields.k.max", "2")])
            .unwrap_err()
            .contains("larger"));
        assert!(v(&[("fields.k.max", "3000000000")]).is_err());
        assert!(v(&[("fields.k.null-rate", "1.5")]).is_err());
        assert!(v(&[("fields.m.max", "99999")]).is_err());
        assert!(v(&[("fields.ts.min", "soon")]).is_err());
        assert!(v(&[("fields.b.min", "1")]).is_err());
        assert!(v(&[("number-of-rows", "x")]).is_err());
        assert!(v(&[("rows-per-second", "0")]).is_err());
        assert!(v(&[("fields.S.length", "3")]).is_ok());
    }
}
