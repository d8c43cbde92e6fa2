/** The page an HTML client sees for an error (API clients get JSON). */
import { escapeHtml, layout } from './layout.ts';

const TITLES: Record<number, string> = { 400: 'Bad request', 401: 'Sign in first', 403: 'Not allowed', 404: 'Not found', 409: 'Conflict', 422: 'Not accepted' };

export function errorPage(status: number, message: string): string {
  const title = TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'Error');
  const signIn = status === 401 ? '<p><a class="button" href="/hub/login">Sign in</a></p>' : '<p><a href="/hub/home">Back to your home page</a></p>';
  return layout({ title, body: `<div class="card"><h1>${status} · ${escapeHtml(title)}</h1><p class="error">${escapeHtml(message)}</p>${signIn}</div>` });
}
