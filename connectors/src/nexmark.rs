//! The `nexmark` connector: the Nexmark benchmark's bid, auction and person streams.
//!
//! A port of the standard generator (as in the `nexmark` crate, itself a port of the
//! Beam/Flink one) that writes Arrow arrays directly. Event `n` (counting all three
//! kinds; per 50 events 1 person, 3 auctions, 46 bids) is a pure function of `n`, the
//! seed and the options; with seed 0 it is exactly the `nexmark` crate's event `n`
//! (timestamps from this connector's integer rate arithmetic). Events are dealt to
//! workers in blocks of 50 (block `b` to worker `b % workers`), so the union over the
//! workers is the same for any worker count and each worker's event times increase.
//!
//! Options: `nexmark.table` (`bid`, `auction` or `person`; required),
//! `nexmark.events` (total events of all kinds; the source is bounded when set),
//! `nexmark.rate` (events per second of event time, default 10 000 000),
//! `nexmark.seed` (default 0), `nexmark.max-out-of-order` (ms, default 0: event times
//! are moved back by a seeded pseudo-random 0..=this many ms) and `nexmark.base-time`
//! (epoch ms of event 0, default 1436918400000 = 2015-07-15).
//!
//! Columns (Flink's Nexmark DDL; matched case-insensitively, any subset, any order):
//! * bid: `auction`, `bidder`, `price` BIGINT, `channel`, `url` VARCHAR,
//!   `dateTime` TIMESTAMP(3), `extra` VARCHAR;
//! * auction: `id`, `itemName`, `description`, `initialBid`, `reserve`, `dateTime`,
//!   `expires`, `seller`, `category`, `extra`;
//! * person: `id`, `name`, `emailAddress`, `creditCard`, `city`, `state`, `dateTime`,
//!   `extra`.

use crate::options::{check_keys, choice, parsed, required};
use crate::{Connector, ConnectorError, Result, Source, SourcePoll, WorkerContext};
use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema, SchemaRef};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sluice_catalogs::{Schema, SourceCapabilities, SqlType, TableDescriptor};
use sluice_expr::ScalarExpr;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

const PROPORTION: u64 = 50;
const PERSON_END: u64 = 1;
const AUCTION_END: u64 = 4;
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const ACTIVE_PEOPLE: u64 = 1000;
const IN_FLIGHT_AUCTIONS: u64 = 100;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_RATIO: u64 = 100;
const NUM_CATEGORIES: u64 = 5;

// The standard generator's (nexmark-flink's `PersonGenerator`, after the Beam/Java one)
// spellings: states upper case (Nexmark q3 filters `state IN ('OR', 'ID', 'CA')`),
// cities and names capitalized.
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];

/// Which Nexmark stream a table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NexmarkTable {
    /// Bids (46 of every 50 events).
    Bid,
    /// Auctions (3 of every 50 events).
    Auction,
    /// New persons (1 of every 50 events).
    Person,
}

/// Where a column's value comes from in a generated event.
#[derive(Clone, Copy)]
enum Slot {
    Int(usize),
    Ts(usize),
    Str(usize),
}

impl NexmarkTable {
    /// The table's columns: name, SQL type, slot.
    fn columns(self) -> &'static [(&'static str, SqlType, Slot)] {
        use Slot::*;
        use SqlType::{BigInt as B, Timestamp as T, Varchar as V};
        match self {
            NexmarkTable::Bid => &[
                ("auction", B, Int(0)),
                ("bidder", B, Int(1)),
                ("price", B, Int(2)),
                ("channel", V, Str(0)),
                ("url", V, Str(1)),
                ("dateTime", T, Ts(3)),
                ("extra", V, Str(2)),
            ],
            NexmarkTable::Auction => &[
                ("id", B, Int(0)),
                ("itemName", V, Str(0)),
                ("description", V, Str(1)),
                ("initialBid", B, Int(1)),
                ("reserve", B, Int(2)),
                ("dateTime", T, Ts(3)),
                ("expires", T, Ts(4)),
                ("seller", B, Int(5)),
                ("category", B, Int(6)),
                ("extra", V, Str(2)),
            ],
            NexmarkTable::Person => &[
                ("id", B, Int(0)),
                ("name", V, Str(0)),
                ("emailAddress", V, Str(1)),
                ("creditCard", V, Str(2)),
                ("city", V, Str(3)),
                ("state", V, Str(4)),
                ("dateTime", T, Ts(1)),
                ("extra", V, Str(5)),
            ],
        }
    }

    /// The event offsets (within each block of 50) of this kind.
    fn range(self) -> (u64, u64) {
        match self {
            NexmarkTable::Person => (0, PERSON_END),
            NexmarkTable::Auction => (PERSON_END, AUCTION_END),
            NexmarkTable::Bid => (AUCTION_END, PROPORTION),
        }
    }
}

/// Validated Nexmark options.
#[derive(Clone, Debug)]
pub(crate) struct NexmarkOptions {
    table: NexmarkTable,
    events: Option<u64>,
    rate: u64,
    seed: u64,
    max_out_of_order: u64,
    base_time: i64,
}

impl NexmarkOptions {
    fn parse(options: &BTreeMap<String, String>) -> Result<NexmarkOptions> {
        check_keys(
            "nexmark",
            options,
            &[
                "nexmark.table",
                "nexmark.events",
                "nexmark.rate",
                "nexmark.seed",
                "nexmark.max-out-of-order",
                "nexmark.base-time",
                "format.on-error",
                "scan.late-records",
                "dead-letter.path",
                "dead-letter.topic",
            ],
            &["dead-letter.properties."],
        )?;
        required(options, "nexmark.table")?;
        let table =
            match choice(options, "nexmark.table", &["bid", "auction", "person"])?.as_deref() {
                Some("bid") => NexmarkTable::Bid,
                Some("auction") => NexmarkTable::Auction,
                _ => NexmarkTable::Person,
            };
        let rate = parsed::<u64>(options, "nexmark.rate")?.unwrap_or(10_000);
        if rate == 0 {
            return Err(ConnectorError::Config(
                "option 'nexmark.rate' must be positive".into(),
            ));
        }
        Ok(NexmarkOptions {
            table,
            events: parsed(options, "nexmark.events")?,
            rate,
            seed: parsed(options, "nexmark.seed")?.unwrap_or(0),
            max_out_of_order: parsed(options, "nexmark.max-out-of-order")?.unwrap_or(0),
            base_time: parsed(options, "nexmark.base-time")?.unwrap_or(1_436_918_400_000),
        })
    }
}

/// Map each declared column to the generated column of the same name.
fn map_columns(table: NexmarkTable, schema: &Schema) -> Result<Vec<usize>> {
    let cols = table.columns();
    schema
        .fields
        .iter()
        .map(|f| {
            let i = cols
                .iter()
                .position(|(n, _, _)| n.eq_ignore_ascii_case(&f.name))
                .ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "nexmark table {table:?} has no column '{}' (it has: {})",
                        f.name,
                        cols.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                    ))
                })?;
            if cols[i].1 != f.ty {
                return Err(ConnectorError::Config(format!(
                    "nexmark column '{}' has type {}, declared as {}",
                    f.name, cols[i].1, f.ty
                )));
            }
            Ok(i)
        })
        .collect()
}

/// The `nexmark` connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct NexmarkConnector;

impl Connector for NexmarkConnector {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities> {
        let o = NexmarkOptions::parse(options)?;
        map_columns(o.table, schema)?;
        Ok(SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: o.events.is_some(),
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
        let o = NexmarkOptions::parse(&table.options)?;
        let map = map_columns(o.table, &table.schema)?;
        let out: Vec<usize> = projection.iter().map(|&p| map[p]).collect();
        let schema = Arc::new(ArrowSchema::new(
            projection
                .iter()
                .map(|&p| {
                    let f = &table.schema.fields[p];
                    ArrowField::new(&f.name, f.ty.to_arrow(), true)
                })
                .collect::<Vec<_>>(),
        ));
        let source: Box<dyn Source> = Box::new(NexmarkSource::new(o, out, schema, ctx));
        Ok(crate::filter::with_filters(
            source, table, projection, filters,
        ))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One generated event's values, reused between events.
#[derive(Default)]
struct Scratch {
    ints: [i64; 7],
    strs: [String; 6],
    /// Which string slots an output column reads. Each event seeds its own generator,
    /// so a string that is not read is not built (its random draws are still made
    /// where later fields depend on them).
    wanted: [bool; 6],
}

/// The standard generator's (channel, url) dictionary.
fn channel_urls() -> &'static [(String, String)] {
    static MAP: OnceLock<Vec<(String, String)>> = OnceLock::new();
    MAP.get_or_init(|| {
        (0..10_000u64)
            .map(|i| {
                let mut url = base_url(i);
                let mut rng = SmallRng::seed_from_u64(i);
                if rng.gen_range(0..10) > 0 {
                    let _ = write!(
                        url,
                        "&channel_id={}",
                        i64::abs(i64::from((i as i32).reverse_bits()))
                    );
                }
                (format!("channel-{i}"), url)
            })
            .collect()
    })
}

fn hot_urls() -> &'static [String] {
    static URLS: OnceLock<Vec<String>> = OnceLock::new();
    URLS.get_or_init(|| (0..4).map(base_url).collect())
}

fn base_url(seed: u64) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut part = || {
        let len = rng.gen_range(3usize..5);
        (0..len)
            .map(|_| {
                if rng.gen_range(0..13) == 0 {
                    '_'
                } else {
                    rng.gen_range(b'a'..=b'z') as char
                }
            })
            .collect::<String>()
    };
    let (a, b, c) = (part(), part(), part());
    format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1")
}

fn push_letters(s: &mut String, rng: &mut SmallRng, n: usize) {
    for _ in 0..n {
        s.push(rng.gen_range(b'a'..=b'z') as char);
    }
}

fn push_extra(s: &mut String, rng: &mut SmallRng, current: usize, average: usize) {
    if current > average {
        return;
    }
    let desired = average - current;
    let delta = (desired + 2) / 5;
    let min = desired - delta;
    let size = min
        + if delta == 0 {
            0
        } else {
            rng.gen_range(0..2 * delta)
        };
    push_letters(s, rng, size);
}

fn gen_price(rng: &mut SmallRng) -> i64 {
    (10.0_f32.powf(rng.gen::<f32>() * 6.0) * 100.0).round() as i64
}

fn person_last_id(event_id: u64) -> u64 {
    event_id / PROPORTION
}

fn person_next_id(event_id: u64, rng: &mut SmallRng) -> u64 {
    let people = person_last_id(event_id) + 1;
    let active = people.min(ACTIVE_PEOPLE);
    people - active + rng.gen_range(0..(active + PERSON_ID_LEAD) as usize) as u64
}

fn auction_last_id(event_id: u64) -> u64 {
    let mut epoch = event_id / PROPORTION;
    let mut offset = event_id % PROPORTION;
    if offset < PERSON_END {
        epoch = epoch.saturating_sub(1);
        offset = AUCTION_END - PERSON_END - 1;
    } else if AUCTION_END <= offset {
        offset = AUCTION_END - PERSON_END - 1;
    } else {
        offset -= PERSON_END;
    }
    epoch * (AUCTION_END - PERSON_END) + offset
}

fn auction_next_id(event_id: u64, rng: &mut SmallRng) -> u64 {
    let max = auction_last_id(event_id);
    let min = max.saturating_sub(IN_FLIGHT_AUCTIONS);
    min + rng.gen_range(0..(max - min + 1 + AUCTION_ID_LEAD) as usize) as u64
}

/// The generator: event `n` of any kind.
struct Generator {
    o: NexmarkOptions,
    seed_mix: u64,
}

impl Generator {
    fn new(o: NexmarkOptions) -> Self {
        let seed_mix = if o.seed == 0 { 0 } else { splitmix64(o.seed) };
        Generator { o, seed_mix }
    }

    /// Event time of event `n` before out-of-order perturbation.
    fn timestamp(&self, n: u64) -> i64 {
        let rate = u128::from(self.o.rate);
        let ms = (u128::from(n) * 2000 + rate) / (2 * rate);
        self.o
            .base_time
            .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Event time of event `n` as emitted.
    fn event_time(&self, n: u64) -> i64 {
        let t = self.timestamp(n);
        if self.o.max_out_of_order == 0 {
            return t;
        }
        let jitter =
            splitmix64(self.seed_mix ^ n ^ 0x005E_ED0F_0DE2) % (self.o.max_out_of_order + 1);
        t.saturating_sub(jitter as i64)
    }

    fn rng(&self, n: u64) -> SmallRng {
        SmallRng::seed_from_u64(n ^ self.seed_mix)
    }

    fn person(&self, n: u64, s: &mut Scratch) {
        let rng = &mut self.rng(n);
        s.strs.iter_mut().for_each(String::clear);
        s.ints[0] = (person_last_id(n) + FIRST_PERSON_ID) as i64;
        let [name, email, card, city, state, extra] = &mut s.strs;
        name.push_str(FIRST_NAMES.choose(rng).copied().unwrap_or(""));
        name.push(' ');
        name.push_str(LAST_NAMES.choose(rng).copied().unwrap_or(""));
        push_letters(email, rng, 7);
        email.push('@');
        push_letters(email, rng, 5);
        email.push_str(".com");
        let (a, b, c, d) = (
            rng.gen_range(0..10000),
            rng.gen_range(0..10000),
            rng.gen_range(0..10000),
            rng.gen_range(0..10000),
        );
        let _ = write!(card, "{a:04} {b:04} {c:04} {d:04}");
        city.push_str(US_CITIES.choose(rng).copied().unwrap_or(""));
        state.push_str(US_STATES.choose(rng).copied().unwrap_or(""));
        let size = 8 + name.len() + email.len() + card.len() + city.len() + state.len();
        push_extra(extra, rng, size, 200);
        s.ints[1] = self.event_time(n);
    }

    fn auction(&self, n: u64, s: &mut Scratch) {
        let rng = &mut self.rng(n);
        s.strs.iter_mut().for_each(String::clear);
        let [item, description, extra, ..] = &mut s.strs;
        s.ints[0] = (auction_last_id(n) + FIRST_AUCTION_ID) as i64;
        push_letters(item, rng, 20);
        push_letters(description, rng, 100);
        let initial = gen_price(rng);
        s.ints[1] = initial;
        s.ints[2] = initial + gen_price(rng);
        let time = self.timestamp(n);
        let events_for_auctions = IN_FLIGHT_AUCTIONS * PROPORTION / (AUCTION_END - PERSON_END);
        let horizon = self
            .timestamp(n + events_for_auctions)
            .saturating_sub(time)
            .max(0) as u64;
        let length = 1 + rng.gen_range(0..horizon.saturating_mul(2).max(1));
        let emitted = self.event_time(n);
        s.ints[3] = emitted;
        s.ints[4] = emitted.saturating_add(length as i64);
        let seller = if rng.gen_range(0..4usize) > 0 {
            (person_last_id(n) / HOT_RATIO) * HOT_RATIO
        } else {
            person_next_id(n, rng)
        };
        s.ints[5] = (seller + FIRST_PERSON_ID) as i64;
        s.ints[6] = (FIRST_CATEGORY_ID + rng.gen_range(0..NUM_CATEGORIES as usize) as u64) as i64;
        push_extra(extra, rng, 8 + 20 + 100 + 8 * 5, 500);
    }

    fn bid(&self, n: u64, s: &mut Scratch) {
        let rng = &mut self.rng(n);
        s.strs.iter_mut().for_each(String::clear);
        let [channel, url, extra, ..] = &mut s.strs;
        let auction = if 0 < rng.gen_range(0..2usize) {
            (auction_last_id(n) / HOT_RATIO) * HOT_RATIO
        } else {
            auction_next_id(n, rng)
        };
        let bidder = if 0 < rng.gen_range(0..4usize) {
            (person_last_id(n) / HOT_RATIO) * HOT_RATIO + 1
        } else {
            person_next_id(n, rng)
        };
        s.ints[0] = (auction + FIRST_AUCTION_ID) as i64;
        s.ints[1] = (bidder + FIRST_PERSON_ID) as i64;
        s.ints[2] = gen_price(rng);
        let [want_channel, want_url, want_extra, ..] = s.wanted;
        let (c, u) = if rng.gen_range(0..2usize) > 0 {
            let i = rng.gen_range(0..HOT_CHANNELS.len());
            (HOT_CHANNELS[i], hot_urls()[i].as_str())
        } else {
            channel_urls()
                .choose(rng)
                .map_or(("", ""), |(c, u)| (c.as_str(), u.as_str()))
        };
        if want_channel {
            channel.push_str(c);
        }
        if want_url {
            url.push_str(u);
        }
        // The extra field's draws come last: skipping them changes nothing else.
        if want_extra {
            push_extra(extra, rng, 32, 100);
        }
        s.ints[3] = self.event_time(n);
    }
}

/// An output column being built.
enum Out {
    Int(Int64Builder, usize),
    Ts(TimestampMillisecondBuilder, usize),
    Str(StringBuilder, usize),
}

/// One worker's share of a Nexmark stream.
pub(crate) struct NexmarkSource {
    gen: Generator,
    /// Generated column index of each output column.
    out: Vec<usize>,
    schema: SchemaRef,
    worker: u64,
    workers: u64,
    /// The next event number to consider.
    next: u64,
    scratch: Scratch,
}

impl NexmarkSource {
    fn new(o: NexmarkOptions, out: Vec<usize>, schema: SchemaRef, ctx: WorkerContext) -> Self {
        let mut scratch = Scratch::default();
        let cols = o.table.columns();
        for &c in &out {
            if let Some((_, _, Slot::Str(i))) = cols.get(c) {
                if let Some(w) = scratch.wanted.get_mut(*i) {
                    *w = true;
                }
            }
        }
        NexmarkSource {
            gen: Generator::new(o),
            out,
            schema,
            worker: ctx.worker as u64,
            workers: ctx.workers as u64,
            next: 0,
            scratch,
        }
    }

    /// Move `next` to this worker's next event of the table's kind.
    fn normalize(&mut self) {
        let (start, end) = self.gen.o.table.range();
        let w = self.workers;
        let block = self.next / PROPORTION;
        let off = self.next % PROPORTION;
        let mine = block + (self.worker + w - block % w) % w;
        self.next = if mine != block {
            mine * PROPORTION + start
        } else if off < start {
            block * PROPORTION + start
        } else if off >= end {
            (block + w) * PROPORTION + start
        } else {
            self.next
        };
    }
}

impl crate::Source for NexmarkSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
        let max_rows = max_rows.max(1);
        let cols = self.gen.o.table.columns();
        let mut builders: Vec<Out> = self
            .out
            .iter()
            .map(|&c| match cols[c].2 {
                Slot::Int(i) => Out::Int(Int64Builder::with_capacity(max_rows), i),
                Slot::Ts(i) => Out::Ts(TimestampMillisecondBuilder::with_capacity(max_rows), i),
                Slot::Str(i) => Out::Str(StringBuilder::with_capacity(max_rows, max_rows * 16), i),
            })
            .collect();
        let mut rows = 0;
        while rows < max_rows {
            self.normalize();
            if self.gen.o.events.is_some_and(|e| self.next >= e) {
                break;
            }
            let n = self.next;
            match self.gen.o.table {
                NexmarkTable::Bid => self.gen.bid(n, &mut self.scratch),
                NexmarkTable::Auction => self.gen.auction(n, &mut self.scratch),
                NexmarkTable::Person => self.gen.person(n, &mut self.scratch),
            }
            for b in &mut builders {
                match b {
                    Out::Int(b, i) => b.append_value(self.scratch.ints[*i]),
                    Out::Ts(b, i) => b.append_value(self.scratch.ints[*i]),
                    Out::Str(b, i) => b.append_value(&self.scratch.strs[*i]),
                }
            }
            self.next += 1;
            rows += 1;
        }
        if rows == 0 {
            return Ok(SourcePoll::Finished);
        }
        let arrays: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Out::Int(b, _) => Arc::new(b.finish()),
                    Out::Ts(b, _) => Arc::new(b.finish()),
                    Out::Str(b, _) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = crate::format::make_batch(&self.schema, arrays, rows)?;
        Ok(SourcePoll::Batch {
            batch,
            bad: Vec::new(),
        })
    }

    fn position(&self) -> serde_json::Value {
        crate::counter("next_event", self.next, self.workers)
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        self.next = crate::counter_position(position, "next_event", "nexmark", self.workers)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
