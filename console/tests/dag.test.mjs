// The DAG layout's rules, without a browser: a task's column is one right of its deepest
// dependency, tasks of one column stack in the workflow's order, and a dependency on an
// unknown task or a cycle (both refused by the API) does not hang or throw.

import { test } from "node:test";
import assert from "node:assert/strict";
import { depths, layout } from "../assets/dag.js";

const t = (id, ...depends_on) => ({ id, depends_on });

test("dag: depth is one more than the deepest dependency", () => {
  const d = depths([t("export", "aggregate", "extract"), t("extract"), t("aggregate", "extract"), t("audit")]);
  assert.deepEqual(Object.fromEntries(d), { export: 2, extract: 0, aggregate: 1, audit: 0 });
});

test("dag: layers left to right, stacked in order, size covers every box", () => {
  const L = layout([t("a"), t("b"), t("c", "a", "b"), t("d", "c")], { boxW: 100, boxH: 40, gapX: 50, gapY: 10, pad: 5 });
  const at = (id) => [L.pos.get(id).x, L.pos.get(id).y];
  assert.deepEqual([at("a"), at("b"), at("c"), at("d")], [[5, 5], [5, 55], [155, 5], [305, 5]]);
  assert.equal(L.width, 5 + 3 * 100 + 2 * 50 + 5);
  assert.equal(L.height, 5 + 2 * 40 + 10 + 5);
});

test("dag: unknown dependencies are ignored and cycles are cut", () => {
  assert.deepEqual(Object.fromEntries(depths([t("a", "ghost"), t("b", "a")])), { a: 0, b: 1 });
  const d = depths([t("x", "y"), t("y", "x")]);
  assert.equal(d.size, 2);
  assert.ok([...d.values()].every(Number.isInteger));
});
