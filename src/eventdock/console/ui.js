// Shared pieces of the console's screens. Every value is rendered through
// Preact, which sets text as text: no screen builds markup from strings.
import { h } from "./vendor/preact.mjs";
import { useCallback, useEffect, useRef, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";

export const html = htm.bind(h);

// Load `fn()` when `deps` change: {data, error, loading, reload}.
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => { live = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

// The hash route: "#/events?event=x" → {path: "/events", params}.
export function currentRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path, params: Object.fromEntries(new URLSearchParams(search)) };
}

export function navigate(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  location.hash = `#${path}${s ? `?${s}` : ""}`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted" aria-live="polite">${what}…</p>`;
}

export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}

export function Json({ value }) {
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

export function Code({ children }) {
  return html`<pre class="code"><code>${children}</code></pre>`;
}

// A labelled input; `error` (the API's message for this field) shows beside it.
export function Field({ label, error, children, hint }) {
  return html`<label class=${error ? "field invalid" : "field"}>
    <span class="label">${label}</span>
    ${children}
    ${hint ? html`<span class="hint">${hint}</span>` : null}
    ${error ? html`<span class="field-error" role="alert">${error}</span>` : null}
  </label>`;
}

export function when(ts) {
  if (!ts) return "—";
  const d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function ago(ts) {
  if (!ts) return "never";
  const seconds = Math.round((Date.now() - new Date(ts).getTime()) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function number(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "—";
}

// A `datetime-local` value (read as UTC) ↔ RFC 3339.
export const toInputTime = (iso) => (iso ? iso.replace(/Z$/, "").slice(0, 16) : "");
export const fromInputTime = (value) => (value ? `${value}:00Z` : "");

// Run an async action with a busy flag and the API's error.
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}

// limit/offset pages (DRF): previous / next buttons.
export function OffsetPager({ count, offset, limit, onOffset }) {
  if (count <= limit && offset === 0) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${offset === 0} onClick=${() => onOffset(Math.max(0, offset - limit))}>Previous</button>
    <span>${number(offset + 1)}–${number(Math.min(offset + limit, count))} of ${number(count)}</span>
    <button type="button" disabled=${offset + limit >= count} onClick=${() => onOffset(offset + limit)}>Next</button>
  </nav>`;
}

// A destructive action asks once more, in the page (no window.confirm).
export function ConfirmButton({ label, confirm = `Confirm: ${label.toLowerCase()}`, onConfirm, disabled }) {
  const [armed, setArmed] = useState(false);
  const second = useRef(null);
  useEffect(() => { if (armed && second.current) second.current.focus(); }, [armed]); // keyboard users land on it
  if (!armed) return html`<button type="button" class="danger" disabled=${disabled} onClick=${() => setArmed(true)}>${label}</button>`;
  return html`<span class="confirm">
    <button type="button" class="danger" ref=${second} disabled=${disabled} onClick=${() => { setArmed(false); onConfirm(); }}>${confirm}</button>
    <button type="button" onClick=${() => setArmed(false)}>Cancel</button>
  </span>`;
}
