// Overview: events per hour over the last 24 h, top event definitions,
// recent violations, live events now and next. Each panel asks one small
// page of one API and is shown only when the token may read it.
import { api, can, jsonApi } from "../api.js";
import { ago, Empty, ErrorBox, html, Loading, number, useLoad, when } from "../ui.js";

function FirstEventHelp({ projectId }) {
  const origin = location.origin;
  return html`<${Empty}>
    <p>No events in the last 24 hours. Send one with a key that has <code>events:write</code>:</p>
    <pre class="code"><code>curl -X POST ${origin}/v1/projects/${projectId}/events \\
  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
  -d '{"nameEvent": "signup", "email": "ada@example.com"}'</code></pre>
  </${Empty}>`;
}

function Chart({ series }) {
  const width = 720;
  const height = 160;
  const max = Math.max(1, ...series.map((b) => b.count));
  const bar = width / series.length;
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${width} ${height + 20}`} role="img" aria-label=${`Events per hour, last 24 hours; most in one hour: ${max}`}>
      ${series.map((b, i) => {
        const h = Math.round((b.count / max) * height);
        return html`<g>
          <rect x=${i * bar + 1} y=${height - h} width=${bar - 2} height=${h} class="bar"><title>${when(b.bucket)}: ${number(b.count)}</title></rect>
          ${i % 6 === 0 && i + 3 < series.length ? html`<text x=${i * bar + 2} y=${height + 15} class="axis">${b.bucket.slice(11, 16)}</text>` : null}
        </g>`;
      })}
    </svg>
    <figcaption>Events per hour, last 24 h (UTC): ${number(series.reduce((n, b) => n + b.count, 0))} in all, at most ${number(max)} in one hour.</figcaption>
  </figure>`;
}

function Trend({ projectId }) {
  const { data, error, loading } = useLoad(() => api(`/api/projects/${projectId}/events/trend?interval=hour`), [projectId]);
  if (loading) return html`<${Loading} />`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data.series.some((b) => b.count)) return html`<${FirstEventHelp} projectId=${projectId} />`;
  return html`<${Chart} series=${data.series} />`;
}

// The ten definitions with the most events, in the API's order (`ordering=-volume`).
function TopDefinitions({ projectId }) {
  const { data, error, loading } = useLoad(() => api(`/api/projects/${projectId}/event_definitions/?ordering=-volume&limit=10`), [projectId]);
  if (loading) return html`<${Loading} />`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data.results.length) return html`<${Empty}>No event definitions yet: the first event of a name creates one.</${Empty}>`;
  return html`<table>
    <thead><tr><th scope="col">Event</th><th scope="col">Volume</th><th scope="col">Last seen</th></tr></thead>
    <tbody>${data.results.map((d) => html`<tr>
      <td><a href=${`#/data/definitions/${encodeURIComponent(d.id)}`}>${d.name}</a></td>
      <td class="num">${number(d.volume)}</td><td title=${d.last_seen_at || ""}>${ago(d.last_seen_at)}</td>
    </tr>`)}</tbody>
  </table>`;
}

function RecentViolations({ projectId }) {
  const { data, error, loading } = useLoad(() => api(`/api/projects/${projectId}/violations/?limit=20`), [projectId]);
  if (loading) return html`<${Loading} />`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  const since = Date.now() - 86400000;
  const recent = data.results.filter((v) => new Date(v.received_at).getTime() >= since);
  if (!recent.length) return html`<${Empty}>No schema violations in the last 24 hours.</${Empty}>`;
  return html`<ul class="plain">${recent.slice(0, 8).map((v) => html`<li>
    <strong>${v.event_name}</strong> <span class=${`badge ${v.action}`}>${v.action}</span>
    <span class="muted">${ago(v.received_at)}</span> — ${v.errors.map((e) => e.message).join("; ")}
  </li>`)}</ul>
  <p><a href="#/violations">All violations (${number(data.count)})</a></p>`;
}

function LiveNowAndNext({ projectId }) {
  const { data, error, loading } = useLoad(
    () => jsonApi(`/api/v2/projects/${projectId}/events?filter[state]=current,future&sort=start_time&page[count]=6`),
    [projectId],
  );
  if (loading) return html`<${Loading} />`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data.data.length) return html`<${Empty}>Nothing live or scheduled. <a href="#/live">Schedule a live event</a>.</${Empty}>`;
  return html`<ul class="plain">${data.data.map((e) => html`<li>
    <span class=${`badge ${e.attributes.state}`}>${e.attributes.state === "current" ? "now" : "next"}</span>
    <strong>${e.attributes.name}</strong> <span class="muted">${when(e.attributes.start_at)} → ${when(e.attributes.end_at)}</span>
  </li>`)}</ul>`;
}

export function Overview({ me, projectId }) {
  return html`<section>
    <h1>Overview</h1>
    <div class="grid">
      ${can(me, "events:read") ? html`<article class="panel wide"><h2>Events</h2><${Trend} projectId=${projectId} /></article>` : null}
      ${can(me, "event_definition:read") ? html`<article class="panel"><h2>Top events</h2><${TopDefinitions} projectId=${projectId} /></article>` : null}
      ${can(me, "event_definition:read") ? html`<article class="panel"><h2>Violations, last 24 h</h2><${RecentViolations} projectId=${projectId} /></article>` : null}
      ${can(me, "live_events:read") ? html`<article class="panel"><h2>Live now and next</h2><${LiveNowAndNext} projectId=${projectId} /></article>` : null}
    </div>
    ${!["events:read", "event_definition:read", "live_events:read"].some((s) => can(me, s))
      ? html`<${Empty}>This key can only write events; sign in with a key that can read to see more.</${Empty}>` : null}
  </section>`;
}
