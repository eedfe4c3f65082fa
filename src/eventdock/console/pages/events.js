// Events: filters and cursor in the URL, one page at a time from
// GET /api/projects/{id}/events, an event's whole JSON, and a live mode
// that tails the SSE stream (newest on top, pause, at most KEEP rows).
import { useEffect, useRef, useState } from "../vendor/hooks.mjs";
import { api, query, stream } from "../api.js";
import { Empty, ErrorBox, Field, fromInputTime, html, Json, Loading, navigate, toInputTime, useLoad, when } from "../ui.js";

const PAGE = 50;
const KEEP = 200;

function Filters({ params, live }) {
  const [form, setForm] = useState(params);
  const set = (name) => (e) => setForm({ ...form, [name]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    navigate("/events", { event: form.event, after: form.after, before: form.before, profile_id: form.profile_id, live: params.live });
  };
  return html`<form class="filters" onSubmit=${submit} aria-label="Filter events">
    <${Field} label="Event name"><input name="event" value=${form.event || ""} onInput=${set("event")} /></${Field}>
    ${live ? null : html`
      <${Field} label="After (UTC)"><input type="datetime-local" name="after" value=${toInputTime(form.after)} onInput=${(e) => setForm({ ...form, after: fromInputTime(e.target.value) })} /></${Field}>
      <${Field} label="Before (UTC)"><input type="datetime-local" name="before" value=${toInputTime(form.before)} onInput=${(e) => setForm({ ...form, before: fromInputTime(e.target.value) })} /></${Field}>
      <${Field} label="Profile id"><input name="profile_id" value=${form.profile_id || ""} onInput=${set("profile_id")} /></${Field}>`}
    <button type="submit">Apply</button>
    <button type="button" onClick=${() => navigate("/events", live ? { live: "1" } : {})}>Clear</button>
  </form>`;
}

function EventRows({ events, empty }) {
  const [open, setOpen] = useState(null);
  if (!events.length) return empty;
  return html`<table class="events">
    <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Source</th><th scope="col">Profile</th><th scope="col">Properties</th></tr></thead>
    <tbody>${events.map((e) => html`
      <tr key=${e.id} class=${open === e.id ? "open" : ""}>
        <td>${when(e.timestamp)}</td>
        <td><button type="button" class="link" aria-expanded=${open === e.id} onClick=${() => setOpen(open === e.id ? null : e.id)}>${e.name}</button></td>
        <td>${e.source}</td>
        <td>${e.profile_id ? html`<a href=${`#/events?profile_id=${encodeURIComponent(e.profile_id)}`}>${e.profile_id.slice(0, 8)}</a>` : "—"}</td>
        <td class="props">${Object.keys(e.properties || {}).slice(0, 6).join(", ")}</td>
      </tr>
      ${open === e.id ? html`<tr class="detail"><td colspan="5"><${Json} value=${e} /></td></tr>` : null}`)}
    </tbody>
  </table>`;
}

function NoEvents({ projectId, filtered }) {
  if (filtered) return html`<${Empty}>No events match these filters. <a href="#/events">Clear them</a>.</${Empty}>`;
  return html`<${Empty}>
    <p>No events stored yet. Send a first one with a key that has <code>events:write</code>:</p>
    <pre class="code"><code>curl -X POST ${location.origin}/v1/projects/${projectId}/events \\
  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
  -d '{"nameEvent": "signup"}'</code></pre></${Empty}>`;
}

function Listing({ projectId, params }) {
  const filters = { event: params.event, after: params.after, before: params.before, profile_id: params.profile_id };
  const { data, error, loading } = useLoad(
    () => api(`/api/projects/${projectId}/events${query({ ...filters, limit: PAGE, cursor: params.cursor })}`),
    [projectId, JSON.stringify(params)],
  );
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} what="Loading events" />`;
  const next = data.next ? new URL(data.next).searchParams.get("cursor") : null;
  const filtered = Object.values(filters).some(Boolean);
  return html`<div>
    <${EventRows} events=${data.results} empty=${html`<${NoEvents} projectId=${projectId} filtered=${filtered || params.cursor} />`} />
    <nav class="pager" aria-label="Pages">
      ${params.cursor ? html`<button type="button" onClick=${() => history.back()}>Newer</button>
        <button type="button" onClick=${() => navigate("/events", filters)}>Newest</button>` : null}
      ${next ? html`<button type="button" onClick=${() => navigate("/events", { ...filters, cursor: next })}>Older</button>` : null}
    </nav>
  </div>`;
}

function LiveTail({ projectId, name }) {
  const [events, setEvents] = useState([]);
  const [status, setStatus] = useState("connecting");
  const [error, setError] = useState(null);
  const [paused, setPaused] = useState(false);
  const [missed, setMissed] = useState(0);
  const pausedRef = useRef(false);
  pausedRef.current = paused;

  useEffect(() => {
    const control = new AbortController();
    setEvents([]);
    let retry;
    const connect = () => {
      setStatus("connecting");
      stream(`/api/projects/${projectId}/events/stream${query({ event: name })}`, {
        signal: control.signal,
        onOpen: () => setStatus("live"),
        onEvent: (e) => {
          if (pausedRef.current) setMissed((n) => n + 1);
          else setEvents((list) => [e, ...list].slice(0, KEEP));
        },
      }).then(
        () => { if (!control.signal.aborted) { setStatus("reconnecting"); retry = setTimeout(connect, 1000); } },
        (e) => { if (!control.signal.aborted) { setError(e); setStatus("stopped"); } },
      );
    };
    connect();
    return () => { control.abort(); clearTimeout(retry); };
  }, [projectId, name]);

  return html`<div>
    <p class="live-status" aria-live="polite">
      <span class=${`badge ${status}`}>${status}</span>
      ${paused ? ` Paused: ${missed} new event${missed === 1 ? "" : "s"} not shown.` : ` Newest first, the last ${KEEP} kept.`}
      <button type="button" onClick=${() => { setPaused(!paused); setMissed(0); }}>${paused ? "Resume" : "Pause"}</button>
    </p>
    <${ErrorBox} error=${error} />
    <${EventRows} events=${events} empty=${html`<${Empty}>Waiting for events${name ? ` named “${name}”` : ""}…</${Empty}>`} />
  </div>`;
}

export function Events({ projectId, route }) {
  const params = route.params;
  const live = params.live === "1";
  return html`<section>
    <h1>Events</h1>
    <div class="tabs" role="group" aria-label="Mode">
      <button type="button" aria-pressed=${!live} onClick=${() => navigate("/events", { event: params.event })}>Stored</button>
      <button type="button" aria-pressed=${live} onClick=${() => navigate("/events", { event: params.event, live: "1" })}>Live tail</button>
    </div>
    <${Filters} key=${JSON.stringify(params)} params=${params} live=${live} />
    ${live ? html`<${LiveTail} projectId=${projectId} name=${params.event} />` : html`<${Listing} projectId=${projectId} params=${params} />`}
  </section>`;
}
