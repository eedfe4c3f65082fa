// Profiles: look one up by any identifier; its identifiers, traits, first
// and last seen, and its events (newest first, cursor pages).
import { useState } from "../vendor/hooks.mjs";
import { api, query } from "../api.js";
import { Empty, ErrorBox, Field, html, Json, Loading, navigate, number, useLoad, when } from "../ui.js";

const KINDS = [
  ["email", "Email"], ["phone", "Phone"], ["customerUUID", "Customer UUID"],
  ["softId", "Soft id"], ["uuidVisitor", "Visitor UUID"], ["fingerprint", "Fingerprint"],
];

function ProfileEvents({ projectId, profileId }) {
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const [open, setOpen] = useState(null);
  const { data, error, loading } = useLoad(
    () => api(`/v1/projects/${projectId}/profiles/${encodeURIComponent(profileId)}/events${query({ limit: 20, cursor })}`),
    [projectId, profileId, cursor],
  );
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  const { items, nextCursor } = data.data;
  if (!items.length) return html`<p class="muted">No events.</p>`;
  return html`<div>
    <table>
      <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Source</th></tr></thead>
      <tbody>${items.map((e) => html`<tr key=${e.id}><td>${when(e.timestamp)}</td>
        <td><button type="button" class="link" aria-expanded=${open === e.id} onClick=${() => setOpen(open === e.id ? null : e.id)}>${e.nameEvent}</button>
          ${open === e.id ? html`<${Json} value=${e} />` : null}</td><td>${e.source}</td></tr>`)}</tbody>
    </table>
    <nav class="pager" aria-label="Pages">
      ${cursors.length > 1 ? html`<button type="button" onClick=${() => setCursors(cursors.slice(0, -1))}>Newer</button>` : null}
      ${nextCursor ? html`<button type="button" onClick=${() => setCursors([...cursors, nextCursor])}>Older</button>` : null}
    </nav>
  </div>`;
}

function Profile({ projectId, profile }) {
  return html`<article class="card profile">
    <h2>Profile <code>${profile.id}</code></h2>
    <dl class="facts">
      <dt>First seen</dt><dd>${when(profile.firstSeen)}</dd>
      <dt>Last seen</dt><dd>${when(profile.lastSeen)}</dd>
      <dt>Events</dt><dd>${number(profile.eventCount)}</dd>
    </dl>
    <h3>Identifiers</h3>
    <dl class="facts">${Object.entries(profile.identifiers || {}).filter(([, v]) => v && v.length).map(([k, v]) => html`<dt>${k}</dt><dd>${v.join(", ")}</dd>`)}</dl>
    <h3>Traits</h3>
    ${Object.keys(profile.traits || {}).length
      ? html`<dl class="facts">${Object.entries(profile.traits).map(([k, v]) => html`<dt>${k}</dt><dd>${v === null ? "—" : String(v)}</dd>`)}</dl>`
      : html`<p class="muted">None.</p>`}
    <h3>Events</h3>
    <${ProfileEvents} projectId=${projectId} profileId=${profile.id} />
  </article>`;
}

function Results({ projectId, by, value }) {
  const { data, error, loading } = useLoad(() => api(`/v1/projects/${projectId}/profiles${query({ [by]: value })}`), [projectId, by, value]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  const items = data.data.items;
  if (!items.length) return html`<${Empty}>No profile has that identifier.</${Empty}>`;
  return html`<div>${items.map((p) => html`<${Profile} key=${p.id} projectId=${projectId} profile=${p} />`)}</div>`;
}

export function Profiles({ projectId, route }) {
  const params = route.params;
  const [form, setForm] = useState({ by: params.by || "email", value: params.value || "" });
  const submit = (e) => { e.preventDefault(); navigate("/profiles", form); };
  return html`<section>
    <h1>Profiles</h1>
    <form class="filters" role="search" onSubmit=${submit}>
      <${Field} label="Identifier">
        <select name="by" value=${form.by} onChange=${(e) => setForm({ ...form, by: e.target.value })}>
          ${KINDS.map(([k, label]) => html`<option value=${k}>${label}</option>`)}
        </select>
      </${Field}>
      <${Field} label="Value"><input name="value" required value=${form.value} onInput=${(e) => setForm({ ...form, value: e.target.value })} /></${Field}>
      <button type="submit">Find</button>
    </form>
    ${params.value ? html`<${Results} projectId=${projectId} by=${params.by || "email"} value=${params.value} />`
      : html`<${Empty}>Look a person up by an identifier their events carried (an email, a phone number, a customer UUID…).</${Empty}>`}
  </section>`;
}
