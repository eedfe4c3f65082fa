// The console's only way to the server: eventdock's public HTTP APIs, with
// the pasted token in an Authorization header. The token lives in this
// tab's sessionStorage and nowhere else (never a URL, a cookie or a log).

const TOKEN = "eventdock.token";
const PROJECT = "eventdock.project";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get projectId() { return sessionStorage.getItem(PROJECT); },
  signIn(token) { sessionStorage.setItem(TOKEN, token); },
  chooseProject(id) { sessionStorage.setItem(PROJECT, id); },
  signOut() { sessionStorage.removeItem(TOKEN); sessionStorage.removeItem(PROJECT); },
};

// An error as the API worded it. `fields` maps a field (DRF's `attr`, a
// JSON:API pointer's last parts, a CDP field) to its message.
export class ApiError extends Error {
  constructor(status, message, fields = {}) {
    super(message);
    this.status = status;
    this.fields = fields;
  }
}

// Each dialect has its own error envelope; this reads all four.
export function errorFrom(status, body) {
  if (body && typeof body === "object") {
    if (typeof body.detail === "string") { // DRF (event schemas, admin, query)
      const fields = body.attr ? { [body.attr]: body.detail } : {};
      for (const e of Array.isArray(body.errors) ? body.errors : []) { // every field's error, where listed
        if (e && e.attr && !(e.attr in fields)) fields[e.attr] = e.detail;
      }
      return new ApiError(status, body.detail, fields);
    }
    if (Array.isArray(body.errors)) { // JSON:API (live events)
      const fields = {};
      for (const e of body.errors) {
        const pointer = e.source && e.source.pointer;
        if (pointer) fields[pointer.split("/").pop()] = e.detail || e.title;
      }
      const first = body.errors[0] || {};
      const where = first.source && first.source.pointer ? ` (${first.source.pointer.split("/").pop()})` : "";
      return new ApiError(status, (first.detail || first.title || "Request failed") + where, fields);
    }
    if (body.error && typeof body.error === "object") { // CDP wrapper, OpenPipeline
      const fields = {};
      for (const f of body.error.fieldErrors || []) fields[f.field] = f.message;
      return new ApiError(status, body.error.message || `HTTP ${status}`, fields);
    }
  }
  return new ApiError(status, `HTTP ${status}`);
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  return h;
}

// `path` is a same-origin path, or an absolute URL of this server (a page's
// `next` link); anything else is refused, so a token never leaves the origin.
function sameOrigin(path) {
  const url = new URL(path, location.origin);
  if (url.origin !== location.origin) throw new ApiError(0, `Refusing to call another origin: ${url.origin}`);
  return url;
}

export async function api(path, { method = "GET", body, type = "application/json", signal } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": type }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response;
  try {
    response = await fetch(sameOrigin(path), init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `The server could not be reached (${e.message}).`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw errorFrom(response.status, data);
  return data;
}

// A file the API streams (an NDJSON export), fetched with the token in its
// header and handed to the browser as a download through a Blob URL: the
// token never goes in a URL, as a plain link would need.
export async function download(path, filename) {
  let response;
  try {
    response = await fetch(sameOrigin(path), { headers: headers({ Accept: "application/x-ndjson, application/json" }) });
  } catch (e) {
    throw new ApiError(0, `The server could not be reached (${e.message}).`);
  }
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    throw errorFrom(response.status, data);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000); // the download has its copy by then
}

export const jsonApi = (path, options = {}) => api(path, { type: "application/vnd.api+json", ...options });

// Server-Sent Events through fetch(): EventSource cannot send an
// Authorization header, and the token must not go in the URL. Calls
// `onEvent(object)` per `data:` line until `signal` aborts; resolves when the
// stream ends (the server closed it), rejects with the API's error.
export async function stream(path, { onEvent, onOpen, signal }) {
  const response = await fetch(sameOrigin(path), { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    throw errorFrom(response.status, data);
  }
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      // Only plain messages are events; `event: overflow` says the server
      // dropped this slow subscriber and ends the stream (the caller reconnects).
      if (lines.some((l) => l.startsWith("event:"))) continue;
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) onEvent(JSON.parse(data));
    }
  }
}

// What the signed-in token is: its project and what it may do (GET /api/me).
export async function whoAmI() {
  return api("/api/me");
}

// Dispatched on window when a project was created (the header's picker reloads).
export const PROJECTS_CHANGED = "eventdock:projects-changed";

export function can(me, scope) {
  return Boolean(me && me.effective_scopes.includes(scope));
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
