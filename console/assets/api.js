// The REST client: the token the user signed in with (sessionStorage, this tab only) as
// `Authorization: Bearer`; a 401 forgets it and goes back to sign-in. Errors are the
// API's one body {code, message, details}, thrown as ApiError. `text: true` returns a
// text/plain answer (an instance's log) as it is.

const KEY = "sluice.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "http_error";
    this.details = body?.details || {};
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export async function api(method, path, body, { signal, quiet401 = false, text: asText = false } = {}) {
  const headers = { Accept: asText ? "text/plain, application/json" : "application/json" };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (res.status === 401 && !quiet401) {
    token.clear();
    window.dispatchEvent(new CustomEvent("sluice:unauthorized"));
  }
  if (res.status === 204) return null;
  const text = await res.text();
  if (asText && res.ok) return text;
  let json = null;
  try {
    json = text ? JSON.parse(text, exactIntegers) : null;
  } catch {
    json = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

export const enc = encodeURIComponent;

/** A JSON integer beyond 2^53 (a BIGINT in a preview row) stays exact, as a BigInt. */
function exactIntegers(_key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}
