/**
 * A small browser stand-in for tests: `fetch` with a cookie jar (per host, like browsers:
 * ports do not separate cookies), redirects left to the test (`follow`), forms and JSON.
 */

/** A cookie as the jar keeps it. */
export interface StoredCookie {
  name: string;
  value: string;
  host: string;
  path: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: string | undefined;
  /** Epoch ms; undefined for a session cookie. */
  expires: number | undefined;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** Sent as application/json. */
  json?: unknown;
  /** Leave the jar out of this request (and ignore what it sets). */
  noCookies?: boolean;
}

export interface HttpResponse {
  status: number;
  url: string;
  headers: Headers;
  text: string;
  /** The redirect target, resolved to an absolute URL. */
  location: string | undefined;
  /** Raw `Set-Cookie` headers, to assert flags. */
  setCookies: string[];
  json<T = unknown>(): T;
}

/** Parse one `Set-Cookie` header for `url`; undefined when malformed. */
export function parseSetCookie(header: string, url: URL): StoredCookie | undefined {
  const [pair, ...attrs] = header.split(';');
  const eq = pair?.indexOf('=') ?? -1;
  if (!pair || eq <= 0) return undefined;
  const cookie: StoredCookie = {
    name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), host: url.hostname,
    path: '/', httpOnly: false, secure: false, sameSite: undefined, expires: undefined,
  };
  for (const attr of attrs) {
    const [rawKey, ...rest] = attr.split('=');
    const key = (rawKey ?? '').trim().toLowerCase();
    const value = rest.join('=').trim();
    if (key === 'path') cookie.path = value || '/';
    else if (key === 'httponly') cookie.httpOnly = true;
    else if (key === 'secure') cookie.secure = true;
    else if (key === 'samesite') cookie.sameSite = value.toLowerCase();
    else if (key === 'max-age') cookie.expires = Date.now() + Number(value) * 1000;
    else if (key === 'expires' && cookie.expires === undefined) cookie.expires = Date.parse(value);
  }
  return cookie;
}

/** A client with its own cookie jar; relative URLs resolve against `baseUrl`. */
export class HttpClient {
  readonly baseUrl: string;
  readonly #jar = new Map<string, StoredCookie>();

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl;
  }

  /** Cookies the jar would send to `url` now. */
  cookiesFor(url: string): StoredCookie[] {
    const target = new URL(url, this.baseUrl);
    const now = Date.now();
    return [...this.#jar.values()].filter((c) => c.host === target.hostname
      && target.pathname.startsWith(c.path)
      && (c.expires === undefined || c.expires > now)
      && (!c.secure || target.protocol === 'https:'));
  }

  /** The jar's cookie called `name` for the base host, if any. */
  cookie(name: string): StoredCookie | undefined {
    return this.cookiesFor(this.baseUrl).find((c) => c.name === name);
  }

  /** Put (or overwrite) a cookie for the base host, e.g. to tamper with one. */
  setCookie(name: string, value: string): void {
    const host = new URL(this.baseUrl).hostname;
    const old = this.#jar.get(`${host} ${name}`);
    this.#jar.set(`${host} ${name}`, { ...(old ?? { host, path: '/', httpOnly: false, secure: false, sameSite: undefined, expires: undefined }), name, value });
  }

  clearCookies(): void {
    this.#jar.clear();
  }

  async request(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const target = new URL(url, this.baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined;
    if (options.form) {
      body = new URLSearchParams(options.form).toString();
      headers['Content-Type'] ??= 'application/x-www-form-urlencoded';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['Content-Type'] ??= 'application/json';
    }
    const cookies = options.noCookies ? [] : this.cookiesFor(target.href);
    if (cookies.length > 0) headers.Cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const res = await fetch(target, {
      method: options.method ?? (body === undefined ? 'GET' : 'POST'),
      headers, body, redirect: 'manual', signal: AbortSignal.timeout(30_000),
    });
    const setCookies = res.headers.getSetCookie();
    if (!options.noCookies) {
      for (const header of setCookies) {
        const cookie = parseSetCookie(header, target);
        if (!cookie) continue;
        const key = `${cookie.host} ${cookie.name}`;
        if (cookie.expires !== undefined && cookie.expires <= Date.now()) this.#jar.delete(key);
        else this.#jar.set(key, cookie);
      }
    }
    const text = await res.text();
    const location = res.headers.get('location');
    return {
      status: res.status, url: target.href, headers: res.headers, text, setCookies,
      location: location === null ? undefined : new URL(location, target).href,
      json: <T>() => JSON.parse(text) as T,
    };
  }

  get(url: string, options: Omit<RequestOptions, 'method'> = {}): Promise<HttpResponse> {
    return this.request(url, { ...options, method: 'GET' });
  }

  post(url: string, options: Omit<RequestOptions, 'method'> = {}): Promise<HttpResponse> {
    return this.request(url, { ...options, method: 'POST' });
  }

  /** GET the redirect target of `res` (throws when `res` is not a redirect). */
  follow(res: HttpResponse, options: Omit<RequestOptions, 'method'> = {}): Promise<HttpResponse> {
    if (res.location === undefined || res.status < 300 || res.status >= 400) {
      throw new Error(`expected a redirect from ${res.url}, got ${res.status}: ${res.text.slice(0, 200)}`);
    }
    return this.get(res.location, options);
  }
}

/** A hidden form field's value in an HTML page (e.g. `_csrf`), or undefined. */
export function hiddenField(html: string, name: string): string | undefined {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`);
  return re.exec(html)?.[1]?.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}
