// Violations: quarantined (rejected) and flagged events by event name and
// action, with their errors; a rejected event can be replayed against
// today's schemas (stored if it now passes, else the remaining errors).
import { useState } from "../vendor/hooks.mjs";
import { api, can, query } from "../api.js";
import { ago, Empty, ErrorBox, Field, html, Json, Loading, navigate, OffsetPager, useAction, useLoad } from "../ui.js";

const PAGE = 50;

function Replay({ projectId, violation, onReplayed }) {
  const action = useAction();
  const [result, setResult] = useState(null);
  const replay = () => action.run(async () => {
    const answer = await api(`/api/projects/${projectId}/violations/${violation.id}/replay/`, { method: "POST", body: {} });
    setResult(answer);
    onReplayed();
  });
  if (result) return html`<span class="ok" role="status">Replayed: stored as ${result.event_id}</span>`;
  return html`<span>
    <button type="button" disabled=${action.busy} onClick=${replay}>Replay</button>
    <${ErrorBox} error=${action.error} />
  </span>`;
}

function Row({ me, projectId, v, onReplayed }) {
  const [open, setOpen] = useState(false);
  const replayable = v.action === "rejected" && !v.replayed && can(me, "event_definition:write");
  return html`<article class="card violation">
    <header>
      <strong>${v.event_name}</strong> <span class=${`badge ${v.action}`}>${v.action}</span>
      <span class="muted"> ${ago(v.received_at)} · ${v.source}${v.event_id ? ` · ${v.event_id}` : ""}</span>
      ${v.replayed ? html` <span class="badge replayed">replayed</span>` : null}
    </header>
    <ul class="plain">${v.errors.map((e) => html`<li><code>${e.property}</code> ${e.message}</li>`)}</ul>
    ${v.event ? html`<button type="button" class="link" aria-expanded=${open} onClick=${() => setOpen(!open)}>${open ? "Hide event" : "Show event"}</button>
      ${open ? html`<${Json} value=${v.event} />` : null}` : null}
    ${replayable ? html`<${Replay} projectId=${projectId} violation=${v} onReplayed=${onReplayed} />` : null}
  </article>`;
}

export function Violations({ me, projectId, route }) {
  const params = route.params;
  const offset = Number(params.offset || 0);
  const [form, setForm] = useState({ event: params.event || "", action: params.action || "" });
  const { data, error, loading, reload } = useLoad(
    () => api(`/api/projects/${projectId}/violations/${query({ event: params.event, action: params.action, limit: PAGE, offset })}`),
    [projectId, params.event, params.action, offset],
  );
  const submit = (e) => { e.preventDefault(); navigate("/violations", form); };
  return html`<section>
    <h1>Violations</h1>
    <form class="filters" onSubmit=${submit} aria-label="Filter violations">
      <${Field} label="Event name"><input name="event" value=${form.event} onInput=${(e) => setForm({ ...form, event: e.target.value })} /></${Field}>
      <${Field} label="Action">
        <select name="action" value=${form.action} onChange=${(e) => setForm({ ...form, action: e.target.value })}>
          <option value="">any</option><option value="rejected">rejected</option><option value="flagged">flagged</option>
        </select>
      </${Field}>
      <button type="submit">Apply</button>
    </form>
    ${error ? html`<${ErrorBox} error=${error} />` : loading && !data ? html`<${Loading} />` : !data.results.length
      ? html`<${Empty}>No violations${params.event || params.action ? " match these filters" : ""}. Events break a schema when a property group attached to their definition says so (<a href="#/data/groups">property groups</a>).</${Empty}>`
      : html`${data.results.map((v) => html`<${Row} key=${v.id} me=${me} projectId=${projectId} v=${v} onReplayed=${reload} />`)}
        <${OffsetPager} count=${data.count} offset=${offset} limit=${PAGE} onOffset=${(o) => navigate("/violations", { ...form, offset: o })} />`}
  </section>`;
}
