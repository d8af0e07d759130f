//! Tests of the Nexmark generator.

use super::*;
use crate::test_util::{drain, read_workers, table};
use crate::values::format_timestamp;
use crate::Registry;
use sluice_catalogs::Field;

fn schema_of(t: NexmarkTable) -> Schema {
    Schema::new(
        t.columns()
            .iter()
            .map(|(n, ty, _)| Field::new(*n, *ty))
            .collect(),
    )
}

fn nex(kind: &str, extra: &[(&str, &str)]) -> TableDescriptor {
    let t = match kind {
        "bid" => NexmarkTable::Bid,
        "auction" => NexmarkTable::Auction,
        _ => NexmarkTable::Person,
    };
    let mut o = vec![("nexmark.table", kind)];
    o.extend_from_slice(extra);
    table("nexmark", schema_of(t), &o)
}

fn all(t: &TableDescriptor, workers: usize, max_rows: usize) -> Vec<Vec<Option<String>>> {
    read_workers(
        &Registry::builtin(),
        t,
        &(0..t.schema.len()).collect::<Vec<_>>(),
        workers,
        max_rows,
    )
}

fn s(x: impl ToString) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn seed_zero_is_the_standard_generator() {
    let base = 1_436_918_400_000u64;
    let n = 3000;
    let opts = [
        ("nexmark.events", "3000"),
        ("nexmark.rate", "10000"),
        ("nexmark.base-time", "1436918400000"),
    ];
    // The crate's defaults spell states, cities and names in lower case; the standard
    // (Java, nexmark-flink) generator's spellings, which Sluice's follows, are set here.
    let words = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
    let cfg = nexmark::config::NexmarkConfig {
        base_time: base,
        us_states: words("AZ,CA,ID,OR,WA,WY"),
        us_cities: words(
            "Phoenix,Los Angeles,San Francisco,Boise,Portland,Bend,Redmond,Seattle,Kent,Cheyenne",
        ),
        first_names: words("Peter,Paul,Luke,John,Saul,Vicky,Kate,Julie,Sarah,Deiter,Walter"),
        last_names: words("Shultz,Abrams,Spencer,White,Bartels,Walton,Smith,Jones,Noris"),
        ..Default::default()
    };
    let (mut bids, mut auctions, mut persons) = (Vec::new(), Vec::new(), Vec::new());
    for e in nexmark::EventGenerator::new(cfg).take(n) {
        match e {
            nexmark::event::Event::Bid(b) => bids.push(vec![
                s(b.auction),
                s(b.bidder),
                s(b.price),
                s(b.channel),
                s(b.url),
                s(format_timestamp(b.date_time as i64)),
                s(b.extra),
            ]),
            nexmark::event::Event::Auction(a) => auctions.push(vec![
                s(a.id),
                s(a.item_name),
                s(a.description),
                s(a.initial_bid),
                s(a.reserve),
                s(format_timestamp(a.date_time as i64)),
                s(format_timestamp(a.expires as i64)),
                s(a.seller),
                s(a.category),
                s(a.extra),
            ]),
            nexmark::event::Event::Person(p) => persons.push(vec![
                s(p.id),
                s(p.name),
                s(p.email_address),
                s(p.credit_card),
                s(p.city),
                s(p.state),
                s(format_timestamp(p.date_time as i64)),
                s(p.extra),
            ]),
        }
    }
    assert_eq!(all(&nex("bid", &opts), 1, 1000), bids);
    assert_eq!(all(&nex("auction", &opts), 1, 1000), auctions);
    assert_eq!(all(&nex("person", &opts), 1, 1000), persons);
}

#[test]
fn proportions_and_bounds() {
    let opts = [("nexmark.events", "5000")];
    assert_eq!(all(&nex("bid", &opts), 1, 700).len(), 4600);
    assert_eq!(all(&nex("auction", &opts), 1, 700).len(), 300);
    assert_eq!(all(&nex("person", &opts), 1, 700).len(), 100);
    // A partial last block.
    let opts = [("nexmark.events", "53")];
    assert_eq!(all(&nex("bid", &opts), 1, 10).len(), 46);
    assert_eq!(all(&nex("auction", &opts), 1, 10).len(), 5);
    assert_eq!(all(&nex("person", &opts), 1, 10).len(), 2);
}

#[test]
fn union_over_workers_is_the_same_for_any_worker_count() {
    for kind in ["bid", "auction", "person"] {
        let t = nex(kind, &[("nexmark.events", "1234"), ("nexmark.seed", "7")]);
        let mut one = all(&t, 1, 100);
        one.sort();
        for workers in 2..=4 {
            let mut many = all(&t, workers, 33);
            many.sort();
            assert_eq!(many, one, "{kind} with {workers} workers");
        }
    }
}

#[test]
fn seeds_are_deterministic_and_distinct() {
    let a = all(
        &nex("bid", &[("nexmark.events", "500"), ("nexmark.seed", "1")]),
        2,
        50,
    );
    let b = all(
        &nex("bid", &[("nexmark.events", "500"), ("nexmark.seed", "1")]),
        2,
        50,
    );
    let c = all(
        &nex("bid", &[("nexmark.events", "500"), ("nexmark.seed", "2")]),
        2,
        50,
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), c.len());
}

#[test]
fn out_of_order_is_bounded_and_happens() {
    let times = |ooo: &str| -> Vec<i64> {
        let t = nex(
            "bid",
            &[
                ("nexmark.events", "2000"),
                ("nexmark.rate", "1000"),
                ("nexmark.max-out-of-order", ooo),
            ],
        );
        let mut src = NexmarkConnector
            .create_source(
                &t,
                &[5],
                &[],
                WorkerContext {
                    worker: 0,
                    workers: 1,
                },
            )
            .unwrap();
        let mut out = Vec::new();
        while let SourcePoll::Batch { batch, .. } = src.poll(256).unwrap() {
            let a = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::TimestampMillisecondArray>()
                .unwrap();
            out.extend(a.values().iter().copied());
        }
        out
    };
    let ordered = times("0");
    assert!(ordered.windows(2).all(|w| w[0] <= w[1]));
    let shuffled = times("100");
    assert_eq!(ordered.len(), shuffled.len());
    assert!(shuffled.windows(2).any(|w| w[0] > w[1]));
    for (o, s) in ordered.iter().zip(&shuffled) {
        assert!(*s <= *o && *s >= o - 100, "{s} vs {o}");
    }
    // The watermark max(seen) - 100 never passes a later event.
    let mut max = shuffled[0];
    for s in &shuffled {
        assert!(*s >= max - 100);
        max = max.max(*s);
    }
}

#[test]
fn projections_subsets_and_positions() {
    let t = table(
        "nexmark",
        Schema::new(vec![
            Field::new("DATETIME", SqlType::Timestamp),
            Field::new("price", SqlType::BigInt),
        ]),
        &[("nexmark.table", "bid"), ("nexmark.events", "300")],
    );
    let full = all(&nex("bid", &[("nexmark.events", "300")]), 1, 1000);
    let mut src = NexmarkConnector
        .create_source(
            &t,
            &[1, 0],
            &[],
            WorkerContext {
                worker: 0,
                workers: 1,
            },
        )
        .unwrap();
    let first = match src.poll(10).unwrap() {
        SourcePoll::Batch { batch, .. } => batch,
        _ => panic!(),
    };
    assert_eq!(first.num_rows(), 10);
    let pos = src.position();
    let mut again = NexmarkConnector
        .create_source(
            &t,
            &[1, 0],
            &[],
            WorkerContext {
                worker: 0,
                workers: 1,
            },
        )
        .unwrap();
    again.seek(&pos).unwrap();
    let rest = drain(again.as_mut(), 64);
    assert_eq!(rest.len(), full.len() - 10);
    for (r, f) in rest.iter().zip(&full[10..]) {
        assert_eq!(r, &vec![f[2].clone(), f[5].clone()]);
    }
}

#[test]
fn options_are_validated() {
    let v = |schema: Schema, opts: &[(&str, &str)]| {
        let t = table("nexmark", schema, opts);
        NexmarkConnector
            .validate(&t.options, &t.schema)
            .map_err(|e| e.to_string())
    };
    let bid = schema_of(NexmarkTable::Bid);
    assert!(!v(bid.clone(), &[("nexmark.table", "bid")]).unwrap().bounded);
    assert!(
        v(
            bid.clone(),
            &[("nexmark.table", "bid"), ("nexmark.events", "10")]
        )
        .unwrap()
        .bounded
    );
    assert!(v(bid.clone(), &[]).unwrap_err().contains("nexmark.table"));
    assert!(v(bid.clone(), &[("nexmark.table", "bids")]).is_err());
    assert!(v(
        bid.clone(),
        &[("nexmark.table", "bid"), ("nexmark.rate", "0")]
    )
    .is_err());
    assert!(v(
        bid.clone(),
        &[("nexmark.table", "bid"), ("nexmark.events", "-1")]
    )
    .is_err());
    let e = v(
        bid.clone(),
        &[("nexmark.table", "bid"), ("nexmark.evnts", "1")],
    )
    .unwrap_err();
    assert!(e.contains("nexmark.events"), "{e}");
    let e = v(bid, &[("nexmark.table", "person")]).unwrap_err();
    assert!(e.contains("'auction'"), "{e}");
    let e = v(
        Schema::new(vec![Field::new("price", SqlType::Int)]),
        &[("nexmark.table", "bid")],
    )
    .unwrap_err();
    assert!(e.contains("BIGINT"), "{e}");
}
