/** The student's home page: Launch (with a worker count), Open, Stop, dashboards, live progress. */
import type { ClusterView } from '../../spawner/cluster-view.ts';
import type { EventRow } from '../store/types.ts';
import { escapeHtml as e } from './layout.ts';

export interface HomeModel {
  login: string;
  view: ClusterView;
  defaultWorkers: number;
  maxWorkers: number;
  csrf: string;
  /** Dashboard links (label → path under the user's JupyterLab URL, `view.url`). */
  links: Record<string, string>;
  /** The last thing that happened to this user's cluster that they should know about. */
  notice?: EventRow;
  /** Where the student's files live and whether workers read them. */
  filesNote: string;
}

const NOTICE_KINDS = new Set(['launch-failed', 'culled', 'lost', 'stop', 'reset']);

/** A sentence for the last failure, cull or stop by someone else. */
export function noticeText(event: EventRow | undefined, login: string): string | undefined {
  if (!event || !NOTICE_KINDS.has(event.kind)) return undefined;
  const reason = typeof event.detail.reason === 'string' ? event.detail.reason : '';
  const when = new Date(event.time).toLocaleString('en-GB', { timeZone: 'UTC' }) + ' UTC';
  switch (event.kind) {
    case 'launch-failed': return `Your last launch failed (${when}): ${reason}`;
    case 'culled': return `Your cluster was stopped by the idle culler (${when}): ${reason}`;
    case 'lost': return `Your cluster stopped unexpectedly (${when}): ${reason}`;
    default: return event.actor === login ? undefined : `Your cluster was ${event.kind === 'reset' ? 'reset' : 'stopped'} by ${event.actor} (${when}).`;
  }
}

export function homeBody(m: HomeModel): string {
  const { view } = m;
  const running = view.phase === 'running';
  const pending = view.phase === 'queued' || view.phase === 'starting';
  const notice = noticeText(m.notice, m.login);
  const csrf = `<input type="hidden" name="_csrf" value="${e(m.csrf)}">`;
  const state = running ? `running with ${view.workers} worker${view.workers === 1 ? '' : 's'}`
    : pending ? (view.queuePosition ? `waiting in line (position ${view.queuePosition})` : 'starting') : view.phase;
  const launchForm = `<form id="launch" method="post" action="/hub/spawn">${csrf}
  <label>Workers <input id="workers" name="workers" type="number" min="0" max="${m.maxWorkers}" value="${m.defaultWorkers}"></label>
  <button class="primary" type="submit">Launch</button></form>`;
  const stopForm = `<form id="stop" method="post" action="/hub/stop">${csrf}<button type="submit">Stop</button></form>`;
  const links = Object.entries(m.links).map(([label, path]) =>
    `<a href="${e(view.url ?? `/user/${m.login}/`)}${e(path)}" target="_blank" rel="noopener">${e(label)}</a>`).join(' · ');
  return `<div class="card" data-user="${e(m.login)}" data-phase="${e(view.phase)}">
<h1>Your cluster</h1>
${notice ? `<p class="error" id="notice">${e(notice)}</p>` : ''}
<p>Status: <strong id="state">${e(state)}</strong></p>
<div id="progress" ${pending ? '' : 'hidden'}><progress id="bar" max="100" value="0"></progress> <span id="message"></span></div>
${running ? `<p><a class="button" id="open" href="/hub/open/${e(m.login)}">Open JupyterLab</a></p><p>Dashboards: ${links}</p>${stopForm}` : ''}
${pending ? stopForm : ''}
${!running && !pending ? launchForm : ''}
<p id="files"><small>${e(m.filesNote)}</small></p>
</div>
<script>${HOME_SCRIPT}</script>`;
}

/**
 * Launch without a page reload and follow the progress stream; the forms work without it.
 * Static text (the user and phase come from the card's data attributes), so the
 * Content-Security-Policy admits exactly this script by its hash.
 */
export const HOME_SCRIPT = `
(() => {
  const card = document.querySelector('[data-user]');
  const user = card.dataset.user, phase = card.dataset.phase;
  const csrf = document.querySelector('input[name=_csrf]')?.value;
  const box = document.getElementById('progress'), bar = document.getElementById('bar'), msg = document.getElementById('message');
  function follow() {
    box.hidden = false;
    const source = new EventSource('/hub/api/users/' + encodeURIComponent(user) + '/cluster/progress');
    source.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      bar.value = ev.progress; msg.textContent = ev.message;
      if (ev.ready) { source.close(); location.assign('/hub/open/' + encodeURIComponent(user)); }
      if (ev.failed) { source.close(); location.reload(); }
    };
  }
  const form = document.getElementById('launch');
  if (form) form.addEventListener('submit', async (event) => {
    event.preventDefault();
    form.querySelector('button').disabled = true;
    const workers = Number(document.getElementById('workers').value);
    const res = await fetch('/hub/api/users/' + encodeURIComponent(user) + '/cluster', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify({ workers }) });
    if (!res.ok) { const body = await res.json(); msg.textContent = body.message; box.hidden = false; form.querySelector('button').disabled = false; return; }
    document.getElementById('state').textContent = 'starting';
    follow();
  });
  if (phase === 'queued' || phase === 'starting') follow();
})();`;
