// Completion of table and column names in the SQL workbench (workbench.js): the names a
// script declares and the ranking of candidates for the word at the caret. Pure
// functions (tested without a browser: tests/complete.test.mjs).

/** The table and column names a script declares (`CREATE TABLE name (col TYPE, …)`):
 * [{name, kind: "table"|"column", detail}]. */
export function scriptNames(sql) {
  const out = [];
  const re = /CREATE\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][\w]*)\s*\(([^;]*?)\)\s*WITH/gi;
  for (const m of sql.matchAll(re)) {
    out.push({ name: m[1], kind: "table", detail: "table" });
    for (const part of m[2].split(",")) {
      const c = /^\s*([A-Za-z_][\w]*)\s+([A-Za-z]+)/.exec(part);
      if (c && !/^(WATERMARK|PRIMARY|CONSTRAINT)$/i.test(c[1])) out.push({ name: c[1], kind: "column", detail: `${c[2].toUpperCase()} · ${m[1]}` });
    }
  }
  return out;
}

/** The names starting with `prefix` (case-insensitive, the prefix itself excluded), tables
 * first, each name once, at most `limit`. */
export function completions(prefix, names, limit = 8) {
  const p = prefix.toLowerCase();
  const seen = new Set();
  const hits = names.filter((n) => {
    const k = n.name.toLowerCase();
    if (!k.startsWith(p) || k === p || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  hits.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === "table" ? -1 : 1));
  return hits.slice(0, limit);
}
