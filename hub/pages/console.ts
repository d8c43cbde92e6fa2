/**
 * The instructor's console: the class as one server-side page of a sortable, filterable
 * list (fast for a class of 300), with add, remove, instructor, stop, scale and reset, and
 * links to the event log and the CSV export. Plain forms and links: works without JavaScript.
 * Every value that is not already HTML goes through `e`.
 */
import { escapeHtml as e } from './layout.ts';

/** One student as the console lists them. */
export interface ConsoleRow {
  login: string;
  admin: boolean;
  phase: string;
  workers: number;
  launched: string | null;
  lastActivity: string | null;
  culls: number;
  idleSeconds: number | null;
  cullAt: string | null;
}

/** The list's filter, sort and page, as its query string says. */
export interface ConsoleQuery {
  q: string;
  state: '' | 'active' | 'ready' | 'inactive';
  sort: string;
  desc: boolean;
  page: number;
}

export interface ConsoleModel {
  rows: ConsoleRow[];
  /** Users matching the filter. */
  total: number;
  pageSize: number;
  query: ConsoleQuery;
  /** Everyone, and running clusters, whatever the filter. */
  classSize: number;
  running: number;
  csrf: string;
  maxWorkers: number;
  flash?: string;
  /** What the instructor must know about the backend (e.g. students are not isolated). */
  warnings?: readonly string[];
}

/** Sortable columns: heading → sort key. */
const COLUMNS: Array<[string, string | null]> = [
  ['User', 'name'], ['State', 'state'], ['Workers', 'workers'], ['Launched', 'launched'], ['Last activity', 'last_activity'], ['Idle', null], ['Culls', 'culls'], ['', null],
];

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '—';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function idle(row: ConsoleRow): string {
  if (row.idleSeconds === null) return '—';
  const cull = row.cullAt ? `, culled at ${row.cullAt.slice(11, 16)} UTC` : '';
  return `${Math.floor(row.idleSeconds / 60)} min${cull}`;
}

/** The console's URL for `query` with `change` applied. */
export function consoleHref(query: ConsoleQuery, change: Partial<ConsoleQuery> = {}): string {
  const next = { ...query, ...change };
  const params = new URLSearchParams();
  if (next.q) params.set('q', next.q);
  if (next.state) params.set('state', next.state);
  if (next.sort !== 'name') params.set('sort', next.sort);
  if (next.desc) params.set('dir', 'desc');
  if (next.page > 1) params.set('page', String(next.page));
  const text = params.toString();
  return `/hub/admin${text ? `?${text}` : ''}`;
}

function header(query: ConsoleQuery): string {
  return COLUMNS.map(([label, key]) => {
    if (!key) return `<th>${e(label)}</th>`;
    const active = query.sort === key;
    const arrow = active ? (query.desc ? ' ↓' : ' ↑') : '';
    const href = consoleHref(query, { sort: key, desc: active ? !query.desc : false, page: 1 });
    return `<th${active ? ` aria-sort="${query.desc ? 'descending' : 'ascending'}"` : ''}><a href="${e(href)}">${e(label)}${arrow}</a></th>`;
  }).join('');
}

export function consoleBody(m: ConsoleModel): string {
  const token = `<input type="hidden" name="_csrf" value="${e(m.csrf)}">`;
  const post = (action: string, label: string, extra = '') =>
    `<form method="post" action="${e(action)}" class="inline">${token}${extra}<button type="submit">${e(label)}</button></form>`;
  const user = (login: string, verb: string) => `/hub/admin/users/${encodeURIComponent(login)}/${verb}`;
  const confirmLink = (action: string, login: string, label: string) =>
    `<a href="/hub/admin/confirm?action=${action}&amp;user=${e(encodeURIComponent(login))}">${e(label)}</a>`;
  const body = m.rows.map((r) => {
    const live = r.phase !== 'stopped';
    return `<tr data-user="${e(r.login)}">
<td>${e(r.login)}${r.admin ? ' <small class="instructor">(instructor)</small>' : ''}</td>
<td class="phase">${e(r.phase)}</td><td class="workers">${live ? r.workers : '—'}</td>
<td>${e(ago(r.launched))}</td><td>${e(ago(r.lastActivity))}</td><td>${e(idle(r))}</td><td class="culls">${r.culls}</td>
<td>${live ? post(user(r.login, 'stop'), 'Stop') : ''}
${r.phase === 'running' ? post(user(r.login, 'scale'), 'Scale', `<input name="workers" type="number" min="0" max="${m.maxWorkers}" value="${r.workers}" class="narrow" aria-label="workers of ${e(r.login)}"> `) : ''}
${confirmLink('reset', r.login, 'Reset')} · ${confirmLink('remove', r.login, 'Remove')} ·
${r.admin ? post(user(r.login, 'uninstructor'), 'Unmake instructor') : post(user(r.login, 'instructor'), 'Make instructor')}
${post(user(r.login, 'signout'), 'Sign out everywhere')}</td></tr>`;
  }).join('\n');
  const pages = Math.max(1, Math.ceil(m.total / m.pageSize));
  const pager = `<p class="pager">Page ${m.query.page} of ${pages} (${m.total} match${m.total === 1 ? '' : 'es'})
${m.query.page > 1 ? `<a rel="prev" href="${e(consoleHref(m.query, { page: m.query.page - 1 }))}">Previous</a>` : ''}
${m.query.page < pages ? `<a rel="next" href="${e(consoleHref(m.query, { page: m.query.page + 1 }))}">Next</a>` : ''}</p>`;
  const stateOption = (value: ConsoleQuery['state'], label: string) =>
    `<option value="${value}"${m.query.state === value ? ' selected' : ''}>${label}</option>`;
  return `<div class="card">
<h1>Class</h1>
${(m.warnings ?? []).map((w) => `<p class="banner warning" role="alert">${e(w)}</p>`).join('\n')}
${m.flash ? `<p id="flash" role="status">${e(m.flash)}</p>` : ''}
<p>${plural(m.classSize, 'user')}, ${plural(m.running, 'cluster')} up.
<a href="/hub/admin/events">Event log</a> · <a href="/hub/admin/users.csv" download>Export CSV</a> ·
<a href="/hub/admin/confirm?action=stop-all">Stop all clusters</a>
${post('/hub/admin/cull', 'Cull idle now')}</p>
<h2>Add students or instructors</h2>
<form method="post" action="/hub/admin/users">${token}
<label for="logins">GitHub logins, one per line (or separated by commas or spaces)</label><br>
<textarea id="logins" name="logins" rows="4" cols="40" required></textarea><br>
<label><input type="checkbox" name="instructor" value="1"> as instructors</label>
<button class="primary" type="submit">Add</button></form>
<h2>Students</h2>
<form method="get" action="/hub/admin" role="search">
<label>Name <input type="text" name="q" value="${e(m.query.q)}"></label>
<label>State <select name="state">${stateOption('', 'all')}${stateOption('ready', 'running')}${stateOption('active', 'running or starting')}${stateOption('inactive', 'no cluster')}</select></label>
${m.query.sort !== 'name' ? `<input type="hidden" name="sort" value="${e(m.query.sort)}">` : ''}${m.query.desc ? '<input type="hidden" name="dir" value="desc">' : ''}
<button type="submit">Filter</button></form>
<table><thead><tr>${header(m.query)}</tr></thead>
<tbody>${body}</tbody></table>
${pager}</div>`;
}
