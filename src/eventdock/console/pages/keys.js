// Keys and projects (admin or `*` tokens): the project's API keys (never
// their tokens), a new key's token shown once, revocation; an admin key
// also lists and creates projects and sets each one's retention.
import { useState } from "../vendor/hooks.mjs";
import { api, PROJECTS_CHANGED } from "../api.js";
import { Code, ConfirmButton, ErrorBox, Field, html, Loading, useAction, useLoad, when } from "../ui.js";

// The scopes to offer: a key allowed on this screen may use every scope, so
// its `effective_scopes` (GET /api/me) list them all, as the server knows them.
function NewKey({ me, projectId, onCreated }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState(["events:write"]);
  const [created, setCreated] = useState(null);
  const action = useAction();
  const fields = (action.error && action.error.fields) || {};
  const toggle = (s) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const key = await api(`/api/projects/${projectId}/keys`, { method: "POST", body: { name, scopes } });
      setCreated(key);
      setName("");
      onCreated();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-label="New API key">
    <h3>New API key</h3>
    <${Field} label="Key name" error=${fields.name}><input name="name" value=${name} onInput=${(e) => setName(e.target.value)} placeholder="website" /></${Field}>
    <fieldset>
      <legend>Scopes</legend>
      ${me.effective_scopes.map((s) => html`<label class="check"><input type="checkbox" checked=${scopes.includes(s)} onChange=${() => toggle(s)} /> ${s}</label>`)}
      ${fields.scopes ? html`<p class="field-error" role="alert">${fields.scopes}</p>` : null}
    </fieldset>
    ${action.error && !Object.keys(fields).length ? html`<${ErrorBox} error=${action.error} />` : null}
    <button type="submit" disabled=${action.busy}>Create key</button>
    ${created ? html`<div class="token" role="status">
      <p><strong>Token of “${created.name || created.id}”</strong>, shown this once: copy it now.</p>
      <${Code}>${created.token}</${Code}>
      <button type="button" onClick=${() => setCreated(null)}>I have copied it</button>
    </div>` : null}
  </form>`;
}

function KeyList({ projectId, version, onChanged }) {
  const { data, error, loading } = useLoad(() => api(`/api/projects/${projectId}/keys`), [projectId, version]);
  const action = useAction();
  const revoke = (k) => action.run(async () => { await api(`/api/projects/${projectId}/keys/${k.id}`, { method: "DELETE" }); onChanged(); });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  return html`<div>
    <${ErrorBox} error=${action.error} />
    <table>
      <thead><tr><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">State</th></tr></thead>
      <tbody>${data.results.map((k) => html`<tr key=${k.id}>
        <td>${k.name || html`<span class="muted">${k.id}</span>`}</td>
        <td>${k.scopes.join(", ")}</td>
        <td>${when(k.created_at)}</td>
        <td>${k.revoked_at ? html`<span class="badge revoked">revoked ${when(k.revoked_at)}</span>`
          : html`<${ConfirmButton} label=${`Revoke ${k.name || "key"}`} confirm="Revoke: it stops working" disabled=${action.busy} onConfirm=${() => revoke(k)} />`}</td>
      </tr>`)}</tbody>
    </table>
  </div>`;
}

// A project's `retention_days`: a number of days, or empty for the
// server's default (null); the API's validation message beside the field.
function Retention({ project, onSaved }) {
  const [days, setDays] = useState(project.retention_days === null ? "" : String(project.retention_days));
  const action = useAction();
  const fields = (action.error && action.error.fields) || {};
  const save = (value) => action.run(async () => {
    const updated = await api(`/api/projects/${project.id}`, { method: "PATCH", body: { retention_days: value } });
    setDays(updated.retention_days === null ? "" : String(updated.retention_days));
    onSaved(updated);
  });
  const submit = (e) => {
    e.preventDefault();
    const text = days.trim();
    // Not a whole number: sent as typed, for the API to say what it wants.
    save(text === "" ? null : /^-?\d+$/.test(text) ? Number(text) : text);
  };
  return html`<form class="retention" onSubmit=${submit} aria-label=${`Retention of ${project.name}`}>
    <${Field} label=${`Retention of ${project.name} (days)`} error=${fields.retention_days || (action.error && action.error.message)}
      hint=${project.retention_days === null ? "server default" : `${project.retention_days} days`}>
      <input name="retention_days" inputmode="numeric" value=${days} placeholder="server default" onInput=${(e) => setDays(e.target.value)} />
    </${Field}>
    <button type="submit" disabled=${action.busy}>Save</button>
    ${project.retention_days !== null ? html`<button type="button" disabled=${action.busy} onClick=${() => save(null)}>Use server default</button>` : null}
  </form>`;
}

// Every project (an admin key): create one, set each one's retention.
export function Projects() {
  const { data, error, reload } = useLoad(() => api("/api/projects"), []);
  const [name, setName] = useState("");
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => { await api("/api/projects", { method: "POST", body: { name } });
      setName("");
      reload();
      dispatchEvent(new Event(PROJECTS_CHANGED));
    });
  };
  return html`<section>
    <h2>Projects</h2>
    <${ErrorBox} error=${error} />
    ${data ? html`<table>
      <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Retention</th><th scope="col">Created</th></tr></thead>
      <tbody>${data.results.map((p) => html`<tr key=${p.id}><td>${p.name}</td><td><code>${p.id}</code></td>
        <td><${Retention} project=${p} onSaved=${reload} /></td><td>${when(p.created_at)}</td></tr>`)}</tbody>
    </table>
    <p class="muted">Events and violations older than a project's retention are removed in the background; an empty retention follows the server's default (<code>EVENTDOCK_RETENTION_DAYS</code>, unset: kept for ever).</p>` : null}
    <form class="inline" onSubmit=${submit} aria-label="New project">
      <${Field} label="New project name" error=${action.error && action.error.message}><input name="project" required value=${name} onInput=${(e) => setName(e.target.value)} /></${Field}>
      <button type="submit" disabled=${action.busy}>Create project</button>
    </form>
    <p class="muted">Choose the project in view at the top of the page.</p>
  </section>`;
}

export function Keys({ me, projectId }) {
  const [version, setVersion] = useState(0);
  const changed = () => setVersion((v) => v + 1);
  return html`<section>
    <h1>Keys & projects</h1>
    <h2>API keys of this project</h2>
    <${KeyList} projectId=${projectId} version=${version} onChanged=${changed} />
    <${NewKey} me=${me} projectId=${projectId} onCreated=${changed} />
    ${me.is_admin ? html`<${Projects} />` : null}
  </section>`;
}
