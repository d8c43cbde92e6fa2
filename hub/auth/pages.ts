/** The sign-in pages. All work without JavaScript: links and plain forms only. */
import { escapeHtml, layout, type PageUser } from '../pages/layout.ts';

/** The warning every page shows while the development sign-in is on ('' when it is off). */
export function devBanner(enabled: boolean): string {
  return enabled
    ? '<div class="banner" role="alert">Development sign-in: anyone can sign in as anyone; only on loopback</div>\n'
    : '';
}

function hidden(name: string, value: string | undefined): string {
  return value === undefined ? '' : `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;
}

/** `/hub/login`: the GitHub button, or the development form when that is enabled. */
export function loginPage(options: { devLogin: boolean; devForm?: boolean; github: boolean; csrf: string; next?: string; error?: string }): string {
  const parts: string[] = ['<div class="card">', '<h1>Sign in</h1>'];
  if (options.error) parts.push(`<p class="error">${escapeHtml(options.error)}</p>`);
  if (options.github) {
    const href = options.next === undefined ? '/hub/oauth_login' : `/hub/oauth_login?next=${encodeURIComponent(options.next)}`;
    parts.push(`<p><a class="button" href="${escapeHtml(href)}">Sign in with GitHub</a></p>`);
  }
  if (options.devLogin && options.devForm !== false) {
    parts.push(
      '<form method="post" action="/hub/dev-login">',
      hidden('_csrf', options.csrf),
      hidden('next', options.next),
      '<label>GitHub login <input type="text" name="name" required autofocus pattern="[A-Za-z0-9][A-Za-z0-9\\-]{0,38}" autocomplete="username"></label> ',
      '<button class="primary" type="submit">Sign in</button>',
      '</form>',
    );
  }
  if (options.devLogin && options.devForm === false) parts.push('<p class="error">The development sign-in answers only requests made on this machine.</p>');
  if (!options.github && !options.devLogin) parts.push('<p class="error">No sign-in method is configured (auth.github).</p>');
  parts.push('</div>');
  return layout({ title: 'Sign in', body: parts.join('\n'), banner: devBanner(options.devLogin) });
}

/** `GET /hub/logout`: a button, because a GET must not sign anyone out. */
export function logoutPage(options: { devLogin: boolean; csrf: string; user?: PageUser }): string {
  const body = [
    '<div class="card">',
    '<h1>Sign out</h1>',
    options.user ? `<p>Signed in as <strong>${escapeHtml(options.user.login)}</strong>.</p>` : '<p>You are not signed in.</p>',
    '<form method="post" action="/hub/logout">',
    hidden('_csrf', options.csrf),
    '<button class="primary" type="submit">Sign out</button>',
    '</form>',
    '</div>',
  ].join('\n');
  return layout({ title: 'Sign out', body, user: options.user, csrf: options.csrf, banner: devBanner(options.devLogin) });
}

/** A short page explaining why sign-in did not happen, with a way back. */
export function signInFailedPage(options: { devLogin: boolean; title: string; message: string }): string {
  const body = [
    '<div class="card">',
    `<h1>${escapeHtml(options.title)}</h1>`,
    `<p class="error">${escapeHtml(options.message)}</p>`,
    '<p><a href="/hub/login">Back to sign-in</a></p>',
    '</div>',
  ].join('\n');
  return layout({ title: options.title, body, banner: devBanner(options.devLogin) });
}
