/**
 * The console's event log and its confirmation pages. The log is newest first, filtered by
 * student and kind, one server-side page at a time. A confirmation is the second step of
 * Reset, Remove and Stop all: it says what will be lost, and only its form does the deed.
 */
import { EVENT_KINDS } from '../events.ts';
import type { EventRow } from '../store/types.ts';
import { escapeHtml as e } from './layout.ts';

export interface EventLogModel {
  rows: EventRow[];
  total: number;
  pageSize: number;
  user: string;
  kind: string;
  page: number;
}

/** The event log's URL for a filter and page. */
function logHref(m: Pick<EventLogModel, 'user' | 'kind'>, page: number): string {
  const params = new URLSearchParams();
  if (m.user) params.set('user', m.user);
  if (m.kind) params.set('kind', m.kind);
  if (page > 1) params.set('page', String(page));
  const text = params.toString();
  return `/hub/admin/events${text ? `?${text}` : ''}`;
}

/** What an event's detail says, in a line. */
function detailText(event: EventRow): string {
  const detail = event.detail;
  const parts: string[] = [];
  if (typeof detail.reason === 'string') parts.push(detail.reason);
  if (typeof detail.workers === 'number') parts.push(`${detail.workers} workers`);
  if (typeof detail.from === 'number' && typeof detail.to === 'number') parts.push(`${detail.from} → ${detail.to} workers`);
  if (typeof detail.seconds === 'number') parts.push(`in ${detail.seconds} s`);
  if (typeof detail.via === 'string') parts.push(`via ${detail.via}`);
  return parts.join('; ');
}

export function eventLogBody(m: EventLogModel): string {
  const label = (kind: string) => (EVENT_KINDS as Record<string, string>)[kind] ?? kind;
  const rows = m.rows.map((ev) => `<tr data-kind="${e(ev.kind)}"><td><time datetime="${e(ev.time)}">${e(ev.time.slice(0, 19).replace('T', ' '))}</time></td>
<td><a href="${e(logHref({ user: ev.user, kind: m.kind }, 1))}">${e(ev.user)}</a></td><td>${e(label(ev.kind))}</td><td>${e(ev.actor)}</td><td>${e(detailText(ev))}</td></tr>`).join('\n');
  const options = ['', ...Object.keys(EVENT_KINDS)].map((kind) =>
    `<option value="${e(kind)}"${kind === m.kind ? ' selected' : ''}>${e(kind ? label(kind) : 'every kind')}</option>`).join('');
  const pages = Math.max(1, Math.ceil(m.total / m.pageSize));
  return `<div class="card">
<h1>Event log</h1>
<p><a href="/hub/admin">Back to the class</a></p>
<form method="get" action="/hub/admin/events" role="search">
<label>Student <input type="text" name="user" value="${e(m.user)}"></label>
<label>Kind <select name="kind">${options}</select></label>
<button type="submit">Filter</button></form>
<table><thead><tr><th>When (UTC)</th><th>Student</th><th>What</th><th>Who</th><th>Detail</th></tr></thead>
<tbody>${rows || '<tr><td colspan="5">No events.</td></tr>'}</tbody></table>
<p class="pager">Page ${m.page} of ${pages} (${m.total} event${m.total === 1 ? '' : 's'})
${m.page > 1 ? `<a rel="prev" href="${e(logHref(m, m.page - 1))}">Newer</a>` : ''}
${m.page < pages ? `<a rel="next" href="${e(logHref(m, m.page + 1))}">Older</a>` : ''}</p></div>`;
}

/** A confirmation: what will happen, what will be lost, one button that does it and a way back. */
export function confirmBody(options: { title: string; lost: string[]; action: string; button: string; csrf: string }): string {
  return `<div class="card">
<h1>${e(options.title)}</h1>
<p>This cannot be undone:</p>
<ul id="lost">${options.lost.map((line) => `<li>${e(line)}</li>`).join('')}</ul>
<form method="post" action="${e(options.action)}"><input type="hidden" name="_csrf" value="${e(options.csrf)}">
<input type="hidden" name="confirm" value="yes"><button class="primary" type="submit">${e(options.button)}</button>
<a href="/hub/admin">Cancel</a></form></div>`;
}
