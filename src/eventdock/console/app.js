// The console's shell: sign-in, the project in view, navigation by scope,
// and the hash router that shows one screen module at a time.
import { render } from "./vendor/preact.mjs";
import { useEffect, useState } from "./vendor/hooks.mjs";
import { api, can, PROJECTS_CHANGED, session, whoAmI } from "./api.js";
import { currentRoute, Empty, ErrorBox, html, Loading, useAction } from "./ui.js";
import { Overview } from "./pages/overview.js";
import { Events } from "./pages/events.js";
import { DataManagement } from "./pages/data.js";
import { Violations } from "./pages/violations.js";
import { LiveEvents } from "./pages/live.js";
import { Profiles } from "./pages/profiles.js";
import { Keys, Projects } from "./pages/keys.js";

// Each screen and the scope it needs to be offered.
const SCREENS = [
  { path: "/", label: "Overview", scope: null, view: Overview },
  { path: "/events", label: "Events", scope: "events:read", view: Events },
  { path: "/data", label: "Data management", scope: "event_definition:read", view: DataManagement },
  { path: "/violations", label: "Violations", scope: "event_definition:read", view: Violations },
  { path: "/live", label: "Live events", scope: "live_events:read", view: LiveEvents },
  { path: "/profiles", label: "Profiles", scope: "profiles:read", view: Profiles },
  { path: "/keys", label: "Keys & projects", scope: "admin", view: Keys },
];

function SignIn({ onSignedIn, error: initial }) {
  const [token, setToken] = useState("");
  const action = useAction();
  const submit = (e) => {
    e.preventDefault();
    action.run(async () => {
      session.signIn(token.trim());
      try {
        onSignedIn(await whoAmI());
      } catch (err) {
        session.signOut();
        throw err;
      }
    });
  };
  return html`<main class="signin">
    <h1>eventdock</h1>
    <form onSubmit=${submit}>
      <label class="field"><span class="label">API token</span>
        <input type="password" name="token" autocomplete="off" required value=${token} onInput=${(e) => setToken(e.target.value)} placeholder="edk_…" />
      </label>
      <p class="hint">Paste an API key's token (<code>eventdock serve</code> printed the admin key on first start; <code>eventdock key create</code> makes more). It is kept in this tab only and forgotten when you sign out or close it.</p>
      <button type="submit" disabled=${action.busy}>Sign in</button>
      <${ErrorBox} error=${action.error || initial} />
    </form>
  </main>`;
}

// An admin key picks the project in view; `onCount` hears how many there are.
function ProjectPicker({ me, projectId, onChoose, onCount }) {
  const [projects, setProjects] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!me.is_admin) return undefined;
    const load = () => api("/api/projects").then((page) => {
      setProjects(page.results);
      onCount(page.results.length);
      if (!session.projectId && page.results.length) onChoose(page.results[0].id);
    }, setError);
    load();
    addEventListener(PROJECTS_CHANGED, load); // a project created on the keys screen
    return () => removeEventListener(PROJECTS_CHANGED, load);
  }, [me]);
  if (!me.is_admin) return html`<span class="project" title=${me.project.id}>Project: <strong>${me.project.name}</strong></span>`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!projects || !projects.length) return null;
  return html`<span class="project"><label for="project-picker">Project</label>
    <select id="project-picker" value=${projectId || ""} onChange=${(e) => onChoose(e.target.value)}>
      ${projects.map((p) => html`<option value=${p.id}>${p.name}</option>`)}
    </select>
  </span>`;
}

// An admin key on a server with no project yet: say so, and offer to make one.
function NoProjects() {
  return html`<section>
    <h1>No projects yet</h1>
    <${Empty}>
      <p>Events, schemas and keys belong to a project, and this server has none yet. Create one below
        (or run <code>eventdock project create NAME</code>); it is then chosen at the top of the page,
        and <em>Keys & projects</em> makes keys for it.</p>
    </${Empty}>
    <${Projects} />
  </section>`;
}

function App() {
  const [me, setMe] = useState(null);
  const [checking, setChecking] = useState(Boolean(session.token));
  const [failure, setFailure] = useState(null);
  const [route, setRoute] = useState(currentRoute());
  const [projectId, setProjectId] = useState(session.projectId);
  const [projectCount, setProjectCount] = useState(null); // an admin key's, once known

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    if (!session.token) return;
    whoAmI().then(signedIn, (e) => { session.signOut(); setFailure(e); setChecking(false); });
  }, []);

  function signedIn(who) {
    setMe(who);
    setChecking(false);
    if (!who.is_admin) choose(who.project.id);
  }
  function choose(id) { session.chooseProject(id); setProjectId(id); }
  function signOut() { session.signOut(); setMe(null); setProjectId(null); location.hash = "#/"; }

  if (checking) return html`<${Loading} what="Signing in" />`;
  if (!me) return html`<${SignIn} onSignedIn=${signedIn} error=${failure} />`;

  const offered = SCREENS.filter((s) => !s.scope || can(me, s.scope));
  const prefix = "/" + route.path.split("/")[1];
  const screen = offered.find((s) => s.path === prefix) || offered[0];
  const View = screen.view;
  return html`<div class="shell">
    <header>
      <a class="brand" href="#/">eventdock</a>
      <nav aria-label="Screens">
        ${offered.map((s) => html`<a href=${"#" + s.path} aria-current=${s === screen ? "page" : null}>${s.label}</a>`)}
      </nav>
      <div class="who">
        <${ProjectPicker} me=${me} projectId=${projectId} onChoose=${choose} onCount=${setProjectCount} />
        <span class="muted">Key: ${me.key.name || me.key.id}</span>
        <button type="button" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main">
      ${projectId ? html`<${View} key=${projectId} me=${me} projectId=${projectId} route=${route} />`
        : projectCount === 0 ? html`<${NoProjects} />` : html`<${Loading} what="Choosing a project" />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
