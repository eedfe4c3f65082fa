// Property groups: their properties (type, required, optional in types,
// validation rules), created and edited with the API's own validation
// errors shown beside the field they name (DRF's `attr`, e.g.
// `properties__0__validation_rules`).
import { useState } from "../vendor/hooks.mjs";
import { api, can } from "../api.js";
import { ConfirmButton, Empty, ErrorBox, Field, html, Loading, OffsetPager, useAction, useLoad } from "../ui.js";

const PAGE = 50;
const TYPES = ["String", "Numeric", "Boolean", "DateTime", "Object", "Any"];
const blankProperty = () => ({ name: "", property_type: "String", is_required: false, is_optional_in_types: false, rules: "" });

function fromGroup(group) {
  return {
    name: group.name,
    description: group.description || "",
    properties: group.properties.map((p) => ({
      id: p.id, name: p.name, property_type: p.property_type, is_required: p.is_required,
      is_optional_in_types: p.is_optional_in_types, rules: p.validation_rules ? JSON.stringify(p.validation_rules) : "",
    })),
  };
}

function GroupForm({ projectId, group, onSaved, onCancel }) {
  const [form, setForm] = useState(group ? fromGroup(group) : { name: "", description: "", properties: [blankProperty()] });
  const action = useAction();
  const fields = (action.error && action.error.fields) || {};
  const setProp = (i, change) => setForm({ ...form, properties: form.properties.map((p, j) => (i === j ? { ...p, ...change } : p)) });

  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      const properties = form.properties.map((p, i) => {
        let rules = null;
        if (p.rules.trim()) {
          try { rules = JSON.parse(p.rules); } catch {
            const error = new Error("Validation rules must be JSON, e.g. {\"enum\": [\"a\", \"b\"]} or {\"minimum\": 0}.");
            error.fields = { [`properties__${i}__validation_rules`]: error.message };
            throw error;
          }
        }
        const out = { name: p.name, property_type: p.property_type, is_required: p.is_required, is_optional_in_types: p.is_optional_in_types, validation_rules: rules };
        if (p.id) out.id = p.id;
        return out;
      });
      const body = { name: form.name, description: form.description, properties };
      const saved = group
        ? await api(`/api/projects/${projectId}/schema_property_groups/${group.id}/`, { method: "PATCH", body })
        : await api(`/api/projects/${projectId}/schema_property_groups/`, { method: "POST", body });
      onSaved(saved);
    });
  };
  const fieldError = (key) => fields[key];
  const listed = Object.keys(fields).some((k) => k === "name" || k === "description" || k.startsWith("properties"));

  return html`<form class="card" onSubmit=${submit} aria-label=${group ? `Edit ${group.name}` : "New property group"}>
    <h3>${group ? `Edit “${group.name}”` : "New property group"}</h3>
    <${Field} label="Group name" error=${fieldError("name")}>
      <input name="name" required value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} />
    </${Field}>
    <${Field} label="Description" error=${fieldError("description")}>
      <input name="description" value=${form.description} onInput=${(e) => setForm({ ...form, description: e.target.value })} />
    </${Field}>
    <fieldset>
      <legend>Properties</legend>
      ${fieldError("properties") ? html`<p class="field-error" role="alert">${fieldError("properties")}</p>` : null}
      ${form.properties.map((p, i) => html`<div class="property-row" key=${i}>
        <${Field} label=${`Property ${i + 1} name`} error=${fieldError(`properties__${i}__name`)}>
          <input value=${p.name} onInput=${(e) => setProp(i, { name: e.target.value })} />
        </${Field}>
        <${Field} label="Type" error=${fieldError(`properties__${i}__property_type`)}>
          <select value=${p.property_type} onChange=${(e) => setProp(i, { property_type: e.target.value })}>
            ${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
          </select>
        </${Field}>
        <label class="check"><input type="checkbox" checked=${p.is_required} onChange=${(e) => setProp(i, { is_required: e.target.checked })} /> Required</label>
        <label class="check"><input type="checkbox" checked=${p.is_optional_in_types} onChange=${(e) => setProp(i, { is_optional_in_types: e.target.checked })} /> Optional in types</label>
        <${Field} label="Validation rules (JSON)" error=${fieldError(`properties__${i}__validation_rules`)} hint=${'e.g. {"enum": ["free", "pro"]} or {"minimum": 0, "maximum": 100}'}>
          <input value=${p.rules} onInput=${(e) => setProp(i, { rules: e.target.value })} />
        </${Field}>
        <button type="button" aria-label=${`Remove property ${i + 1}`} onClick=${() => setForm({ ...form, properties: form.properties.filter((_, j) => j !== i) })}>Remove</button>
      </div>`)}
      <button type="button" onClick=${() => setForm({ ...form, properties: [...form.properties, blankProperty()] })}>Add property</button>
    </fieldset>
    ${action.error && !listed ? html`<${ErrorBox} error=${action.error} />` : null}
    <button type="submit" disabled=${action.busy}>${group ? "Save group" : "Create group"}</button>
    <button type="button" onClick=${onCancel}>Cancel</button>
  </form>`;
}

function rulesText(rules) {
  return rules ? JSON.stringify(rules) : "—";
}

export function PropertyGroups({ me, projectId }) {
  const [offset, setOffset] = useState(0);
  const { data, error, loading, reload } = useLoad(() => api(`/api/projects/${projectId}/schema_property_groups/?limit=${PAGE}&offset=${offset}`), [projectId, offset]);
  const [editing, setEditing] = useState(null); // null, "new", or a group
  const action = useAction();
  const writable = can(me, "event_definition:write");
  const saved = () => { setEditing(null); reload(); };
  const remove = (g) => action.run(async () => {
    await api(`/api/projects/${projectId}/schema_property_groups/${g.id}/`, { method: "DELETE" });
    reload();
  });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  return html`<div>
    ${writable && !editing ? html`<p><button type="button" onClick=${() => setEditing("new")}>New property group</button></p>` : null}
    ${editing ? html`<${GroupForm} key=${editing === "new" ? "new" : editing.id} projectId=${projectId} group=${editing === "new" ? null : editing} onSaved=${saved} onCancel=${() => setEditing(null)} />` : null}
    <${ErrorBox} error=${action.error} />
    ${!data.results.length ? html`<${Empty}>No property groups yet. A group lists properties with their types and rules; attach it to an event definition to validate that event.</${Empty}>` : null}
    ${data.results.map((g) => html`<article class="card" key=${g.id}>
      <h3>${g.name}</h3>
      ${g.description ? html`<p>${g.description}</p>` : null}
      <table>
        <thead><tr><th scope="col">Property</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Optional in types</th><th scope="col">Rules</th></tr></thead>
        <tbody>${g.properties.map((p) => html`<tr key=${p.id}><td>${p.name}</td><td>${p.property_type}</td><td>${p.is_required ? "yes" : "no"}</td><td>${p.is_optional_in_types ? "yes" : "no"}</td><td><code>${rulesText(p.validation_rules)}</code></td></tr>`)}</tbody>
      </table>
      <p class="muted">Attached to: ${g.events.length ? g.events.map((e, i) => html`${i ? ", " : ""}<a href=${`#/data/definitions/${encodeURIComponent(e.id)}`}>${e.name}</a>`) : "no event"}</p>
      ${writable ? html`<p><button type="button" onClick=${() => setEditing(g)}>Edit</button> <${ConfirmButton} label="Delete group" onConfirm=${() => remove(g)} /></p>` : null}
    </article>`)}
    <${OffsetPager} count=${data.count} offset=${offset} limit=${PAGE} onOffset=${setOffset} />
  </div>`;
}
