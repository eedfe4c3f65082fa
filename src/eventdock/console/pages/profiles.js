// Profiles: look one up by any identifier; its identifiers, traits, first
// and last seen, and its events (newest first, cursor pages). With
// `profiles:read` a person's data can be exported (NDJSON), with
// `profiles:write` the person erased, and the erasure followed to its end.
import { useEffect, useState } from "../vendor/hooks.mjs";
import { api, can, download, query } from "../api.js";
import { ConfirmButton, Empty, ErrorBox, Field, html, Json, Loading, navigate, number, useAction, useLoad, when } from "../ui.js";

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

// How often, and how long, an erasure is followed before the page says
// "still running" and offers to look again (it goes on in the background).
const POLL_MS = 500;
const POLL_FOR_MS = 60000;

// A deletion request (`DELETE …/profiles/{id}` → 202), asked again until it
// is completed or POLL_FOR_MS has passed.
function useDeletion(projectId) {
  const [deletion, setDeletion] = useState(null);
  const [error, setError] = useState(null);
  const [round, setRound] = useState(0);
  const [following, setFollowing] = useState(false);
  useEffect(() => {
    if (!deletion || deletion.status === "completed") return undefined;
    const until = Date.now() + POLL_FOR_MS;
    let timer = null;
    let live = true;
    const poll = async () => {
      try {
        const now = (await api(`/v1/projects/${projectId}/deletions/${deletion.id}`)).data;
        if (!live) return;
        setDeletion(now);
        if (now.status !== "completed" && Date.now() < until) timer = setTimeout(poll, POLL_MS);
        else setFollowing(false);
      } catch (e) {
        if (live) { setError(e); setFollowing(false); }
      }
    };
    setFollowing(true);
    timer = setTimeout(poll, POLL_MS);
    return () => { live = false; clearTimeout(timer); };
  }, [deletion && deletion.id, round]);
  const again = () => { setError(null); setRound((r) => r + 1); };
  return { deletion, setDeletion, following, error, again };
}

function DeletionStatus({ deletion, following, error, again }) {
  const { events, profiles, violations } = deletion.deleted;
  const of = (n, what) => `${number(n)} ${what}${n === 1 ? "" : "s"}`;
  const counts = `${of(events, "event")}, ${of(profiles, "profile")}, ${of(violations, "violation")} erased`;
  const done = deletion.status === "completed";
  return html`<div class="deletion" role="status">
    <p><span class=${`badge ${deletion.status}`}>${deletion.status}</span>
      ${done ? ` Erased at ${when(deletion.completedAt)}: ${counts}.` : ` ${counts} so far…`}
      ${deletion.suppress ? " Later events carrying this person's identifiers are dropped." : ""}</p>
    <p class="muted">Deletion request <code>${deletion.id}</code>, requested ${when(deletion.requestedAt)}.</p>
    <${ErrorBox} error=${error} />
    ${!done && !following ? html`<p>Still ${deletion.status}: the erasure goes on in the server.
      <button type="button" onClick=${again}>Check again</button></p>` : null}
  </div>`;
}

function Export({ projectId, profile }) {
  const action = useAction();
  const id = encodeURIComponent(profile.id);
  const save = () => action.run(() => download(`/v1/projects/${projectId}/profiles/${id}/export`, `profile-${profile.id}.ndjson`));
  return html`<span>
    <button type="button" disabled=${action.busy} onClick=${save}>${action.busy ? "Exporting…" : "Export data"}</button>
    <${ErrorBox} error=${action.error} />
  </span>`;
}

function Erase({ projectId, profile, onRequested }) {
  const [suppress, setSuppress] = useState(false);
  const action = useAction();
  const erase = () => action.run(async () => {
    const answer = await api(`/v1/projects/${projectId}/profiles/${encodeURIComponent(profile.id)}${query({ suppress: suppress ? "true" : "" })}`, { method: "DELETE" });
    onRequested(answer.data);
  });
  return html`<span class="erase">
    <label class="check"><input type="checkbox" checked=${suppress} onChange=${(e) => setSuppress(e.target.checked)} /> Suppress future events</label>
    <${ConfirmButton} label="Erase this person" confirm="Confirm: erase their profile and events for good" disabled=${action.busy} onConfirm=${erase} />
    <${ErrorBox} error=${action.error} />
  </span>`;
}

function Profile({ me, projectId, profile }) {
  const { deletion, setDeletion, following, error, again } = useDeletion(projectId);
  const erased = deletion && deletion.status === "completed";
  return html`<article class="card profile">
    <h2>Profile <code>${profile.id}</code></h2>
    ${deletion ? null : html`<div class="actions">
      ${can(me, "profiles:read") ? html`<${Export} projectId=${projectId} profile=${profile} />` : null}
      ${can(me, "profiles:write") ? html`<${Erase} projectId=${projectId} profile=${profile} onRequested=${setDeletion} />` : null}
    </div>`}
    ${deletion ? html`<${DeletionStatus} deletion=${deletion} following=${following} error=${error} again=${again} />` : null}
    ${erased ? null : html`
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
      <${ProfileEvents} projectId=${projectId} profileId=${profile.id} />`}
  </article>`;
}

function Results({ me, projectId, by, value }) {
  const { data, error, loading } = useLoad(() => api(`/v1/projects/${projectId}/profiles${query({ [by]: value })}`), [projectId, by, value]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  const items = data.data.items;
  if (!items.length) return html`<${Empty}>No profile has that identifier.</${Empty}>`;
  return html`<div>${items.map((p) => html`<${Profile} key=${p.id} me=${me} projectId=${projectId} profile=${p} />`)}</div>`;
}

export function Profiles({ me, projectId, route }) {
  const params = route.params;
  const [form, setForm] = useState({ by: params.by || "email", value: params.value || "" });
  const [round, setRound] = useState(0); // Find again with the same value asks again (the route is unchanged)
  const submit = (e) => { e.preventDefault(); navigate("/profiles", form); setRound((r) => r + 1); };
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
    ${params.value ? html`<${Results} key=${round} me=${me} projectId=${projectId} by=${params.by || "email"} value=${params.value} />`
      : html`<${Empty}>Look a person up by an identifier their events carried (an email, a phone number, a customer UUID…).</${Empty}>`}
  </section>`;
}
