// Data management: event definitions (search, volume, last seen,
// enforcement mode), one definition's attached property groups and its
// generated TypeScript / Python, and the property groups (groups.js).
import { useState } from "../vendor/hooks.mjs";
import { api, can, query } from "../api.js";
import { ago, Code, ConfirmButton, Empty, ErrorBox, Field, html, Loading, navigate, number, OffsetPager, useAction, useLoad } from "../ui.js";
import { PropertyGroups } from "./groups.js";

const PAGE = 50;

function Tabs({ path }) {
  const tab = (href, label, active) => html`<a href=${href} aria-current=${active ? "page" : null}>${label}</a>`;
  return html`<nav class="tabs" aria-label="Data management">
    ${tab("#/data", "Event definitions", !path.startsWith("/data/groups"))}
    ${tab("#/data/groups", "Property groups", path.startsWith("/data/groups"))}
  </nav>`;
}

function ModeSelect({ projectId, definition, writable, onChanged }) {
  const action = useAction();
  if (!writable) return html`<span class=${`badge ${definition.enforcement_mode}`}>${definition.enforcement_mode}</span>`;
  const change = (e) => action.run(async () => {
    const updated = await api(`/api/projects/${projectId}/event_definitions/${definition.id}/`, { method: "PATCH", body: { enforcement_mode: e.target.value } });
    onChanged(updated);
  });
  return html`<span>
    <select aria-label=${`Enforcement mode of ${definition.name}`} value=${definition.enforcement_mode} disabled=${action.busy} onChange=${change}>
      <option value="allow">allow</option><option value="reject">reject</option>
    </select>
    <${ErrorBox} error=${action.error} />
  </span>`;
}

function Definitions({ me, projectId, params }) {
  const offset = Number(params.offset || 0);
  const [search, setSearch] = useState(params.search || "");
  const { data, error, loading, reload } = useLoad(
    () => api(`/api/projects/${projectId}/event_definitions/${query({ search: params.search, limit: PAGE, offset })}`),
    [projectId, params.search, offset],
  );
  const writable = can(me, "event_definition:write");
  return html`<div>
    <form class="filters" role="search" onSubmit=${(e) => { e.preventDefault(); navigate("/data", { search }); }}>
      <${Field} label="Search event names"><input name="search" value=${search} onInput=${(e) => setSearch(e.target.value)} /></${Field}>
      <button type="submit">Search</button>
    </form>
    ${error ? html`<${ErrorBox} error=${error} />` : loading && !data ? html`<${Loading} />` : !data.results.length
      ? html`<${Empty}>${params.search ? "No event definition matches." : "No event definitions yet: the first event of a name creates one, or plan one with POST event_definitions/."}</${Empty}>`
      : html`<table>
        <thead><tr><th scope="col">Event</th><th scope="col">Volume</th><th scope="col">Last seen</th><th scope="col">Enforcement</th></tr></thead>
        <tbody>${data.results.map((d) => html`<tr key=${d.id}>
          <td><a href=${`#/data/definitions/${encodeURIComponent(d.id)}`}>${d.name}</a></td>
          <td class="num">${number(d.volume)}</td>
          <td title=${d.last_seen_at || ""}>${ago(d.last_seen_at)}</td>
          <td><${ModeSelect} projectId=${projectId} definition=${d} writable=${writable} onChanged=${reload} /></td>
        </tr>`)}</tbody>
      </table>
      <${OffsetPager} count=${data.count} offset=${offset} limit=${PAGE} onOffset=${(o) => navigate("/data", { search: params.search, offset: o })} />`}
  </div>`;
}

function Attach({ projectId, definitionId, attached, onAttached }) {
  const groups = useLoad(() => api(`/api/projects/${projectId}/schema_property_groups/?limit=1000`), [projectId]);
  const [choice, setChoice] = useState("");
  const action = useAction();
  if (groups.error) return html`<${ErrorBox} error=${groups.error} />`;
  if (!groups.data) return null;
  const free = groups.data.results.filter((g) => !attached.includes(g.id));
  if (!free.length) return html`<p class="muted">${groups.data.results.length ? "Every property group is attached." : html`No property groups yet: <a href="#/data/groups">create one</a>.`}</p>`;
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      await api(`/api/projects/${projectId}/event_schemas/`, { method: "POST", body: { event_definition: definitionId, property_group_id: choice || free[0].id } });
      onAttached();
    });
  };
  return html`<form class="inline" onSubmit=${submit}>
    <${Field} label="Attach property group" error=${action.error && action.error.message}>
      <select value=${choice || free[0].id} onChange=${(e) => setChoice(e.target.value)}>
        ${free.map((g) => html`<option value=${g.id}>${g.name}</option>`)}
      </select>
    </${Field}>
    <button type="submit" disabled=${action.busy}>Attach</button>
  </form>`;
}

function Generated({ projectId, definitionId, version }) {
  const [lang, setLang] = useState("typescript");
  const { data, error } = useLoad(() => api(`/api/projects/${projectId}/event_definitions/${definitionId}/${lang}`), [projectId, definitionId, lang, version]);
  return html`<div>
    <div class="tabs" role="group" aria-label="Language">
      <button type="button" aria-pressed=${lang === "typescript"} onClick=${() => setLang("typescript")}>TypeScript</button>
      <button type="button" aria-pressed=${lang === "python"} onClick=${() => setLang("python")}>Python</button>
    </div>
    <${ErrorBox} error=${error} />
    ${typeof data === "string" ? html`<${Code}>${data}</${Code}>` : null}
  </div>`;
}

function Definition({ me, projectId, id }) {
  const def = useLoad(() => api(`/api/projects/${projectId}/event_definitions/${id}/`), [projectId, id]);
  const schemas = useLoad(() => api(`/api/projects/${projectId}/event_schemas/?event_definition=${encodeURIComponent(id)}&limit=1000`), [projectId, id]);
  const action = useAction();
  const writable = can(me, "event_definition:write");
  if (def.error) return html`<${ErrorBox} error=${def.error} />`;
  if (!def.data) return html`<${Loading} />`;
  const d = def.data;
  const detach = (schema) => action.run(async () => {
    await api(`/api/projects/${projectId}/event_schemas/${schema.id}/`, { method: "DELETE" });
    schemas.reload();
  });
  const remove = () => action.run(async () => {
    await api(`/api/projects/${projectId}/event_definitions/${d.id}/`, { method: "DELETE" });
    navigate("/data");
  });
  return html`<div>
    <p><a href="#/data">← Event definitions</a></p>
    <h2>${d.name}</h2>
    <p>${d.description || html`<span class="muted">No description.</span>`}</p>
    <dl class="facts">
      <dt>Volume</dt><dd>${number(d.volume)}</dd>
      <dt>Last seen</dt><dd>${ago(d.last_seen_at)}</dd>
      <dt>Enforcement</dt><dd><${ModeSelect} projectId=${projectId} definition=${d} writable=${writable} onChanged=${def.reload} /></dd>
    </dl>
    <h3>Property groups</h3>
    <${ErrorBox} error=${schemas.error || action.error} />
    ${schemas.data ? schemas.data.results.length
      ? html`<ul class="plain">${schemas.data.results.map((s) => html`<li key=${s.id}>
          <strong>${s.property_group.name}</strong>
          <span class="muted"> ${s.property_group.properties.map((p) => `${p.name}: ${p.property_type}${p.is_required ? " (required)" : ""}`).join(", ")}</span>
          ${writable ? html` <button type="button" onClick=${() => detach(s)}>Detach</button>` : null}
        </li>`)}</ul>`
      : html`<${Empty}>No property group attached: events of this name are not validated.</${Empty}>` : null}
    ${writable && schemas.data ? html`<${Attach} projectId=${projectId} definitionId=${d.id} attached=${schemas.data.results.map((s) => s.property_group.id)} onAttached=${schemas.reload} />` : null}
    <h3>Generated types</h3>
    <${Generated} projectId=${projectId} definitionId=${d.id} version=${schemas.data ? schemas.data.count : 0} />
    ${writable ? html`<p><${ConfirmButton} label="Delete definition" confirm="Delete it and its schemas" onConfirm=${remove} /></p>` : null}
  </div>`;
}

export function DataManagement({ me, projectId, route }) {
  const parts = route.path.split("/");
  let body;
  if (parts[2] === "groups") body = html`<${PropertyGroups} me=${me} projectId=${projectId} />`;
  else if (parts[2] === "definitions" && parts[3]) body = html`<${Definition} me=${me} projectId=${projectId} id=${decodeURIComponent(parts[3])} />`;
  else body = html`<${Definitions} me=${me} projectId=${projectId} params=${route.params} />`;
  return html`<section><h1>Data management</h1><${Tabs} path=${route.path} />${body}</section>`;
}
