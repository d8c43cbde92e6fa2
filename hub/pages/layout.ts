/**
 * The one HTML frame every hub page uses: a complete small page with an inline stylesheet,
 * a nav bar (Home, Admin for instructors, a sign-out form) and an optional banner.
 * Plain string building: every value that is not already HTML goes through `escapeHtml`.
 */

/** Escape text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** Who the page is for, as the nav needs it. */
export interface PageUser {
  login: string;
  admin: boolean;
}

export interface PageOptions {
  /** Plain text; escaped here. */
  title: string;
  /** The page's main content, already HTML (escape what you put in it). */
  body: string;
  /** The signed-in user; without one the nav only offers signing in. */
  user?: PageUser;
  /** CSRF token for the nav's sign-out form (the form is left out without it). */
  csrf?: string;
  /** Banner HTML shown above everything, e.g. `devBanner(true)`. */
  banner?: string;
}

/** The one stylesheet, inline; the Content-Security-Policy admits it by its hash. */
export const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{display:flex;align-items:center;gap:1rem;padding:.6rem 1.2rem;background:#24292f;color:#fff}
header a,header button{color:#fff;text-decoration:none;background:none;border:0;font:inherit;cursor:pointer;padding:0}
header .brand{font-weight:600;margin-right:auto}
header form{margin:0}
main{max-width:52rem;margin:2rem auto;padding:0 1.2rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1.2rem 1.5rem}
.banner{padding:.6rem 1.2rem;background:#fff8c5;border-bottom:1px solid #d4a72c;font-weight:600}
.error{color:#cf222e}
.button,button.primary{display:inline-block;padding:.5rem 1rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;font:inherit;cursor:pointer;text-decoration:none}
input[type=text]{padding:.4rem;font:inherit;border:1px solid #d0d7de;border-radius:6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d0d7de}
form.inline{display:inline}input.narrow{width:4em}
.warning{padding:.6rem 1rem;background:#fff8c5;border:1px solid #d4a72c;border-radius:6px}
`.trim();

/** The nav bar: Home / Admin / sign-out when signed in, a sign-in link otherwise. */
function nav(user: PageUser | undefined, csrf: string | undefined): string {
  const links = ['<a class="brand" href="/hub/home">clusterhub</a>'];
  if (user) {
    links.push('<a href="/hub/home">Home</a>');
    if (user.admin) links.push('<a href="/hub/admin">Admin</a>');
    links.push(`<span>${escapeHtml(user.login)}</span>`);
    links.push(csrf === undefined
      ? '<a href="/hub/logout">Sign out</a>'
      : `<form method="post" action="/hub/logout"><input type="hidden" name="_csrf" value="${escapeHtml(csrf)}"><button type="submit">Sign out</button></form>`);
  } else {
    links.push('<a href="/hub/login">Sign in</a>');
  }
  return `<header>${links.join('')}</header>`;
}

/** A complete HTML page. */
export function layout(options: PageOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)} · clusterhub</title>
<style>${STYLE}</style>
</head>
<body>
${options.banner ?? ''}${nav(options.user, options.csrf)}
<main>
${options.body}
</main>
</body>
</html>
`;
}
