// Live events (the Monterosa-compatible JSON:API): a timeline by state;
// create, edit, start, stop and delete; each event's stats.
import { useState } from "../vendor/hooks.mjs";
import { can, jsonApi } from "../api.js";
import { ConfirmButton, Empty, ErrorBox, Field, fromInputTime, html, Loading, number, toInputTime, useAction, useLoad, when } from "../ui.js";

const STATES = [
  { state: "current", title: "Live now", sort: "start_time" },
  { state: "future", title: "Coming up", sort: "start_time" },
  { state: "past", title: "Finished", sort: "-start_time" },
];
const HOUR = 3600;

const patch = (id, attributes) => jsonApi(`/api/v2/events/${id}`, { method: "PATCH", body: { data: { type: "events", id, attributes } } });

// Where each event sits in a window around now: a bar per event.
function Timeline({ events }) {
  const now = Date.now() / 1000;
  const from = now - 6 * HOUR;
  const to = now + 18 * HOUR;
  const x = (t) => Math.max(0, Math.min(1000, ((t - from) / (to - from)) * 1000));
  return html`<svg class="timeline" viewBox=${`0 0 1000 ${events.length * 16 + 20}`} role="img" aria-label="Timeline from 6 hours ago to 18 hours ahead">
    <line x1=${x(now)} x2=${x(now)} y1="0" y2=${events.length * 16 + 20} class="now" />
    <text x=${x(now) + 3} y="10" class="axis">now</text>
    ${events.map((e, i) => html`<rect x=${x(e.attributes.start_at)} y=${i * 16 + 14} height="10"
        width=${Math.max(2, x(e.attributes.end_at) - x(e.attributes.start_at))} class=${`lane ${e.attributes.state}`}>
      <title>${e.attributes.name}: ${when(e.attributes.start_at)} → ${when(e.attributes.end_at)}</title></rect>`)}
  </svg>`;
}

function EventForm({ projectId, event, onSaved, onCancel }) {
  const a = event ? event.attributes : null;
  const future = !a || a.state === "future";
  const [form, setForm] = useState({
    name: a ? a.name : "",
    start_mode: a ? a.start_mode : "manual",
    start_at: toInputTime(a ? a.start_at_iso : new Date(Date.now() + HOUR * 1000).toISOString()),
    minutes: a ? String(a.duration / 60) : "60",
  });
  const action = useAction();
  const fields = (action.error && action.error.fields) || {};
  const set = (name) => (e) => setForm({ ...form, [name]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const attributes = { name: form.name };
      if (future) {
        attributes.start_mode = form.start_mode;
        attributes.start_at = Date.parse(fromInputTime(form.start_at)) / 1000;
        attributes.duration = Number(form.minutes) * 60;
      }
      if (event) await patch(event.id, attributes);
      else await jsonApi("/api/v2/events", { method: "POST", body: { data: { type: "events", attributes, relationships: { project: { data: { type: "projects", id: projectId } } } } } });
      onSaved();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label=${event ? `Edit ${a.name}` : "New live event"}>
    <h3>${event ? `Edit “${a.name}”` : "New live event"}</h3>
    <${Field} label="Name" error=${fields.name}><input name="name" required value=${form.name} onInput=${set("name")} /></${Field}>
    ${future ? html`
      <${Field} label="Start mode" error=${fields.start_mode}>
        <select name="start_mode" value=${form.start_mode} onChange=${set("start_mode")}>
          <option value="manual">manual (started by hand)</option><option value="clock">clock (starts at its time)</option>
        </select>
      </${Field}>
      <${Field} label="Starts at (UTC)" error=${fields.start_at}><input type="datetime-local" name="start_at" required value=${form.start_at} onInput=${set("start_at")} /></${Field}>
      <${Field} label="Duration (minutes)" error=${fields.duration}><input type="number" name="minutes" min="0" step="any" required value=${form.minutes} onInput=${set("minutes")} /></${Field}>`
      : html`<p class="muted">Only the name can change once an event has started.</p>`}
    ${action.error && !Object.keys(fields).length ? html`<${ErrorBox} error=${action.error} />` : null}
    <button type="submit" disabled=${action.busy}>${event ? "Save" : "Create"}</button>
    <button type="button" onClick=${onCancel}>Cancel</button>
  </form>`;
}

function Stats({ id }) {
  const { data, error } = useLoad(() => jsonApi(`/api/v2/events/${id}?include=stats`), [id]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<span class="muted">…</span>`;
  const stats = (data.included || []).find((r) => r.type === "stats");
  return html`<span>${number(stats ? stats.attributes.ingested_events : 0)} events ingested during it</span>`;
}

function LiveRow({ event, writable, onChanged, onEdit }) {
  const a = event.attributes;
  const action = useAction();
  const [showStats, setShowStats] = useState(false);
  const act = (name) => action.run(async () => { await patch(event.id, { action: name }); onChanged(); });
  const remove = () => action.run(async () => { await jsonApi(`/api/v2/events/${event.id}`, { method: "DELETE" }); onChanged(); });
  return html`<li class="live-row">
    <strong>${a.name}</strong>
    <span class="muted"> ${a.start_mode} · ${when(a.start_at)} → ${when(a.end_at)} · ${Math.round(a.duration / 60)} min</span>
    <span class="actions">
      ${writable && a.actions.includes("start") ? html`<button type="button" disabled=${action.busy} onClick=${() => act("start")}>Start</button>` : null}
      ${writable && a.actions.includes("stop") ? html`<button type="button" disabled=${action.busy} onClick=${() => act("stop")}>Stop</button>` : null}
      ${writable ? html`<button type="button" onClick=${() => onEdit(event)}>Edit</button>` : null}
      <button type="button" aria-expanded=${showStats} onClick=${() => setShowStats(!showStats)}>Stats</button>
      ${writable ? html`<${ConfirmButton} label="Delete" disabled=${action.busy} onConfirm=${remove} />` : null}
    </span>
    ${showStats ? html`<div><${Stats} id=${event.id} /></div>` : null}
    <${ErrorBox} error=${action.error} />
  </li>`;
}

function Lane({ projectId, state, title, sort, version, writable, onChanged, onEdit }) {
  const { data, error, loading } = useLoad(
    () => jsonApi(`/api/v2/projects/${projectId}/events?filter[state]=${state}&sort=${sort}&page[count]=20`),
    [projectId, version],
  );
  return html`<section class="lane" aria-label=${title}>
    <h2>${title}${data ? ` (${number(data.meta.count)})` : ""}</h2>
    ${error ? html`<${ErrorBox} error=${error} />` : loading && !data ? html`<${Loading} />` : !data.data.length
      ? html`<p class="muted">None.</p>`
      : html`<${Timeline} events=${data.data} /><ul class="plain">${data.data.map((e) => html`<${LiveRow} key=${e.id} event=${e} writable=${writable} onChanged=${onChanged} onEdit=${onEdit} />`)}</ul>`}
  </section>`;
}

export function LiveEvents({ me, projectId }) {
  const [version, setVersion] = useState(0);
  const [editing, setEditing] = useState(null); // null, "new" or an event
  const writable = can(me, "live_events:write");
  const changed = () => { setEditing(null); setVersion((v) => v + 1); };
  return html`<section>
    <h1>Live events</h1>
    ${writable && !editing ? html`<p><button type="button" onClick=${() => setEditing("new")}>New live event</button></p>` : null}
    ${editing ? html`<${EventForm} key=${editing === "new" ? "new" : editing.id} projectId=${projectId} event=${editing === "new" ? null : editing} onSaved=${changed} onCancel=${() => setEditing(null)} />` : null}
    ${STATES.map((s) => html`<${Lane} key=${s.state} projectId=${projectId} ...${s} version=${version} writable=${writable} onChanged=${changed} onEdit=${setEditing} />`)}
    <p class="muted">Shows, matches and broadcasts: their start and end land in the event stream as <code>live_event_started</code> / <code>live_event_ended</code>.</p>
  </section>`;
}
