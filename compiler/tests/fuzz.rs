//! The compiler must never panic on user input: random token soup and random
//! mutations of valid scripts go through `compile()` and the binder.

mod common;

use common::{catalog, AnyConnector};
use proptest::prelude::*;
use sluice_catalogs::Catalog;

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "INNER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "TRUE",
    "FALSE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "INT",
    "BIGINT",
    "VARCHAR",
    "DECIMAL(10,2)",
    "TIMESTAMP(3)",
    "DATE",
    "INTERVAL",
    "'5'",
    "SECOND",
    "HOUR",
    "YEAR",
    "TUMBLE",
    "HOP",
    "SESSION",
    "TABLE",
    "DESCRIPTOR",
    "PARTITION",
    "TUMBLE_START",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "DISTINCT",
    "UNION",
    "ALL",
    "WITH",
    "CREATE",
    "VIEW",
    "INSERT",
    "INTO",
    "VALUES",
    "EXPLAIN",
    "SET",
    "WATERMARK",
    "FOR",
    "IN",
    "BETWEEN",
    "LIKE",
    "IS",
    "EXTRACT",
    "FLOOR",
    "TO",
    "COALESCE",
    "NULLIF",
    "IF",
    "SUBSTRING",
    "TRIM",
    "POSITION",
    "t",
    "u",
    "bid",
    "person",
    "sink2",
    "a",
    "b",
    "c",
    "d",
    "s",
    "dt",
    "ts",
    "flag",
    "price",
    "dateTime",
    "bidder",
    "auction",
    "t.a",
    "*",
    "(",
    ")",
    ",",
    ";",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<",
    ">",
    "<=",
    "<>",
    "||",
    "1",
    "0",
    "-1",
    "1.5",
    "1e3",
    "99999999999999999999999999",
    "'x'",
    "''",
    "'2024-01-01'",
    "DATE '2024-01-01'",
    "2147483648",
    "9223372036854775808",
];

const VALID: &[&str] = &[
    "SELECT a, b + 1 AS x FROM t WHERE a > 1 ORDER BY x DESC LIMIT 3",
    "SELECT s, COUNT(*), SUM(b) FROM t GROUP BY s HAVING COUNT(*) > 1",
    "SELECT auction, window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY auction, window_start, window_end",
    "SELECT TUMBLE_START(dateTime, INTERVAL '10' SECOND), auction, COUNT(*) FROM bid GROUP BY TUMBLE(dateTime, INTERVAL '10' SECOND), auction",
    "CREATE TABLE x (a INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'kafka'); INSERT INTO sink2 SELECT a, COUNT(*) FROM x GROUP BY a",
    "SELECT * FROM SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)",
    "SELECT p.name, b.price FROM bid b JOIN person p ON b.bidder = p.id AND b.dateTime BETWEEN p.dateTime AND p.dateTime + INTERVAL '1' HOUR",
    "WITH c AS (SELECT a, x FROM u WHERE a > 0) SELECT t.a, c.x FROM t LEFT JOIN c USING (a) ORDER BY b + 1 LIMIT 5",
    "SELECT 1.5 + a, a / 2, d * 2, CASE a WHEN 1 THEN 'x' END, COALESCE(a, b), NULLIF(a, 1), IF(flag, 1, 2.5), a IN (1, 2), s LIKE 'a%', dt < '2024-01-01', EXTRACT(YEAR FROM ts), FLOOR(ts TO HOUR), DATE_TRUNC('day', ts), SUBSTRING(s FROM 2 FOR 3), TRIM(BOTH 'x' FROM s), POSITION('a' IN s), flag IS TRUE FROM t",
    "SELECT a FROM t UNION SELECT a FROM u ORDER BY 1",
    "CREATE VIEW v AS SELECT a, s FROM t; EXPLAIN SELECT s, MAX(a) FROM v GROUP BY 1",
    "VALUES (1, 'a'), (2, NULL)",
];

fn run(sql: &str) {
    let cat = catalog();
    let c: &dyn Catalog = &cat;
    let _ = sluice_compiler::bind_script(sql, c, &AnyConnector);
    let _ = sluice_compiler::compile(sql, c, &AnyConnector);
}

fn mutate(base: &str, ops: &[(u8, usize, usize)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for &(op, pos, tok) in ops {
        if chars.is_empty() {
            break;
        }
        let at = pos % (chars.len() + 1);
        let t = TOKENS[tok % TOKENS.len()];
        match op % 4 {
            0 => {
                if at < chars.len() {
                    chars.remove(at);
                }
            }
            1 => {
                for (k, ch) in format!(" {t} ").chars().enumerate() {
                    chars.insert(at + k, ch);
                }
            }
            2 => {
                let end = (at + 1 + tok % 7).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            _ => {
                if let Some(c) = chars.get_mut(at) {
                    *c = ['(', ')', ',', '\'', '.', '*', ' ', '0'][tok % 8];
                }
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(0..TOKENS.len(), 0..30)) {
        let sql = toks.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" ");
        run(&sql);
    }

    #[test]
    fn select_prefixed_soup_never_panics(toks in proptest::collection::vec(0..TOKENS.len(), 0..25)) {
        let sql = format!("SELECT {} FROM t", toks.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" "));
        run(&sql);
    }

    #[test]
    fn mutated_valid_queries_never_panic(
        base in 0..VALID.len(),
        ops in proptest::collection::vec((0u8..4, 0usize..400, 0usize..1000), 1..5),
    ) {
        run(&mutate(VALID[base], &ops));
    }
}

#[test]
fn valid_fuzz_seeds_bind() {
    for q in VALID {
        let cat = catalog();
        let c: &dyn Catalog = &cat;
        if let Err(e) = sluice_compiler::bind_script(q, c, &AnyConnector) {
            panic!("{q}\n=> {e}");
        }
    }
}

#[test]
fn deep_nesting_is_an_error_or_binds_without_overflowing_the_stack() {
    let depths = [10usize, 40, 60, 200, 250, 2000];
    for d in depths {
        let parens = format!("SELECT {}1{} FROM t", "(".repeat(d), ")".repeat(d));
        let arith = format!("SELECT {} FROM t", vec!["a"; d].join(" + "));
        let ors = format!(
            "SELECT a FROM t WHERE {}",
            (0..d)
                .map(|i| format!("a = {i}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        let negs = format!("SELECT {}a FROM t", "- ".repeat(d));
        let nots = format!("SELECT a FROM t WHERE {}flag", "NOT ".repeat(d));
        let cases = format!(
            "SELECT {}1{} FROM t",
            "CASE WHEN a > 1 THEN ".repeat(d.min(100)),
            " END".repeat(d.min(100))
        );
        let subqueries = format!(
            "SELECT * FROM {}t{}",
            "(SELECT * FROM ".repeat(d.min(100)),
            ") x".repeat(d.min(100))
        );
        for sql in [parens, arith, ors, negs, nots, cases, subqueries] {
            run(&sql);
        }
    }
    // Long operator chains bind up to the limit and fail cleanly beyond it.
    let chain = |n: usize| format!("SELECT {} FROM t", vec!["a"; n].join(" + "));
    assert!(common::bind(&chain(200)).is_ok());
    let e = common::bind(&chain(300)).expect_err("too deep");
    assert_eq!(e.kind, sluice_compiler::ErrorKind::Unsupported);
    assert!(e.to_string().contains("nested too deeply"), "{e}");
}
