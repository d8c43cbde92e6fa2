/** The warning an instructor reads before opening a student's JupyterLab (`auth.adminAccess`). */
import { escapeHtml as e } from './layout.ts';

export function openWarningBody(name: string, csrf: string): string {
  return `<div class="card">
<h1>Open ${e(name)}'s JupyterLab?</h1>
<p class="warning">You will act as ${e(name)}: everything in that JupyterLab runs with ${e(name)}'s rights, and any page
${e(name)} serves from it (through its proxy) runs in your browser on that origin. Open it only to help ${e(name)},
and close the tab when you are done.</p>
<form method="post" action="/hub/open/${e(name)}"><input type="hidden" name="_csrf" value="${e(csrf)}">
<button class="primary" type="submit">Open ${e(name)}'s JupyterLab</button> <a href="/hub/admin">Back</a></form>
</div>`;
}
