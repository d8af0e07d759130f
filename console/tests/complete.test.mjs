// The workbench's completion rules (assets/complete.js), without a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { completions, scriptNames } from "../assets/complete.js";

const SQL = `CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen');
CREATE TABLE expensive (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO expensive SELECT auction, price FROM bids;`;

test("complete: a script's tables and columns, watermarks left out", () => {
  const names = scriptNames(SQL);
  assert.deepEqual(names.filter((n) => n.kind === "table").map((n) => n.name), ["bids", "expensive"]);
  assert.deepEqual(names.filter((n) => n.kind === "column" && n.detail.endsWith("bids")).map((n) => n.name), ["auction", "price", "ts"]);
  assert.equal(names.find((n) => n.name === "ts").detail, "TIMESTAMP · bids");
});

test("complete: prefix matches, tables first, each name once, the word itself not offered", () => {
  const names = [...scriptNames(SQL), { name: "Prices", kind: "table", detail: "table · kafka" }];
  assert.deepEqual(completions("pr", names).map((n) => n.name), ["Prices", "price"]);
  assert.deepEqual(completions("price", names).map((n) => n.name), ["Prices"]);
  assert.deepEqual(completions("zz", names), []);
  assert.equal(completions("", names, 3).length, 3);
});
