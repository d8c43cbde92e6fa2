/** The instructor's page: every user with state, workers, activity; Stop, Scale, Reset, Stop all. */
import { escapeHtml as e } from './layout.ts';

export interface AdminRow {
  login: string;
  admin: boolean;
  phase: string;
  workers: number;
  lastActivity: string | null;
  idleSeconds: number | null;
  cullAt: string | null;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function ago(iso: string | null): string {
  if (!iso) return '—';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function idle(row: AdminRow): string {
  if (row.idleSeconds === null) return '—';
  const minutes = Math.floor(row.idleSeconds / 60);
  const cull = row.cullAt ? `, culled at ${row.cullAt.slice(11, 16)} UTC` : '';
  return `${minutes} min${cull}`;
}

export function adminBody(rows: AdminRow[], csrf: string, maxWorkers: number, message?: string): string {
  const token = `<input type="hidden" name="_csrf" value="${e(csrf)}">`;
  const action = (login: string, verb: string, label: string, extra = '') =>
    `<form method="post" action="/hub/admin/users/${e(login)}/${verb}" class="inline">${token}${extra}<button type="submit">${label}</button></form>`;
  const body = rows.map((r) => {
    const live = r.phase !== 'stopped';
    return `<tr data-user="${e(r.login)}">
<td>${e(r.login)}${r.admin ? ' <small>(admin)</small>' : ''}</td>
<td class="phase">${e(r.phase)}</td><td class="workers">${live ? r.workers : '—'}</td>
<td>${e(ago(r.lastActivity))}</td><td>${e(idle(r))}</td>
<td>${live ? action(r.login, 'stop', 'Stop') : ''}
${r.phase === 'running' ? action(r.login, 'scale', 'Scale', `<input name="workers" type="number" min="0" max="${maxWorkers}" value="${r.workers}" class="narrow"> `) : ''}
${action(r.login, 'reset', 'Reset')}
${action(r.login, 'signout', 'Sign out everywhere')}</td></tr>`;
  }).join('\n');
  const running = rows.filter((r) => r.phase !== 'stopped').length;
  return `<div class="card">
<h1>Students</h1>
${message ? `<p id="flash">${e(message)}</p>` : ''}
<p>${plural(rows.length, 'user')}, ${plural(running, 'cluster')}. <form method="post" action="/hub/admin/stop-all" class="inline">${token}<button type="submit">Stop all clusters</button></form>
<form method="post" action="/hub/admin/cull" class="inline">${token}<button type="submit">Cull idle now</button></form></p>
<table><thead><tr><th>User</th><th>State</th><th>Workers</th><th>Last activity</th><th>Idle</th><th></th></tr></thead>
<tbody>${body}</tbody></table></div>`;
}
