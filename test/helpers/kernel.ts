/**
 * Run code in a Jupyter kernel the way JupyterLab does: REST to start a kernel, then
 * Jupyter's kernel channels protocol over a websocket (`execute_request` on shell,
 * `stream`/`execute_result`/`error`/`status` back on iopub).
 */
import { randomUUID } from 'node:crypto';

export interface RunOptions {
  /** Each piece of stdout/stderr as it arrives (to act while a long cell runs). */
  onOutput?: (text: string) => void;
  timeoutMs?: number;
}

interface KernelMessage {
  channel?: string;
  header: { msg_type: string; msg_id: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
}

/**
 * Start a kernel at `baseUrl` (e.g. http://127.0.0.1:8888/user/alice/), run `code`, return
 * what it printed plus the text of its result; rejects with the Python error. The kernel
 * is shut down afterwards.
 */
export async function runInKernel(baseUrl: string, token: string, code: string, options: RunOptions = {}): Promise<string> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const headers = { Authorization: `token ${token}`, 'Content-Type': 'application/json' };
  const created = await fetch(`${base}api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'python3' }) });
  if (!created.ok) throw new Error(`POST api/kernels: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  try {
    return await execute(`${base.replace(/^http/, 'ws')}api/kernels/${id}/channels?token=${encodeURIComponent(token)}`, code, options);
  } finally {
    await fetch(`${base}api/kernels/${id}`, { method: 'DELETE', headers }).then((r) => r.body?.cancel(), () => {});
  }
}

function execute(url: string, code: string, options: RunOptions): Promise<string> {
  const session = randomUUID();
  const msgId = randomUUID();
  const timeoutMs = options.timeoutMs ?? 180_000;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let output = '';
    let replied = false;
    let idle = false;
    let error: Error | undefined;
    const timer = setTimeout(() => finish(new Error(`kernel did not finish within ${timeoutMs / 1000}s; output so far:\n${output}`)), timeoutMs);
    function finish(err?: Error): void {
      clearTimeout(timer);
      ws.close();
      if (err) reject(err);
      else resolve(output);
    }
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({
        channel: 'shell',
        header: { msg_id: msgId, msg_type: 'execute_request', session, username: 'test', version: '5.3', date: new Date().toISOString() },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        buffers: [],
      }));
    });
    ws.addEventListener('error', () => finish(new Error(`websocket error on ${url.replace(/token=[^&]+/, 'token=…')}`)));
    ws.addEventListener('close', (event) => {
      if (!(replied && idle)) finish(new Error(`websocket closed (${event.code}) before the cell finished; output:\n${output}`));
    });
    ws.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      const msg = JSON.parse(event.data) as KernelMessage;
      if (msg.parent_header.msg_id !== msgId) return;
      const c = msg.content;
      switch (msg.header.msg_type) {
        case 'stream':
          output += String(c.text);
          options.onOutput?.(String(c.text));
          break;
        case 'execute_result':
          output += String((c.data as Record<string, string>)['text/plain'] ?? '');
          break;
        case 'error':
          error = new Error(`${String(c.ename)}: ${String(c.evalue)}\n${(c.traceback as string[]).join('\n').replace(/\x1b\[[0-9;]*m/g, '')}`);
          break;
        case 'execute_reply':
          replied = true;
          break;
        case 'status':
          if (c.execution_state === 'idle') idle = true;
          break;
      }
      if (replied && idle) finish(error);
    });
  });
}

/**
 * Start a kernel at `baseUrl` and run `code` until the kernel says busy, then close the
 * socket (no browser left open): a long computation the culler must leave alone.
 */
export async function startBusyKernel(baseUrl: string, token: string, code: string): Promise<void> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const created = await fetch(`${base}api/kernels`, { method: 'POST', headers: { Authorization: `token ${token}` }, body: '{"name":"python3"}' });
  if (!created.ok) throw new Error(`POST api/kernels: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}api/kernels/${id}/channels?token=${token}`);
  const msgId = randomUUID();
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('error', () => reject(new Error(`websocket to the kernel at ${base} failed`)));
    ws.addEventListener('open', () => ws.send(JSON.stringify({
      channel: 'shell', buffers: [], parent_header: {}, metadata: {},
      header: { msg_id: msgId, msg_type: 'execute_request', session: randomUUID(), username: 'test', version: '5.3', date: new Date().toISOString() },
      content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    })));
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(String(e.data)) as { msg_type: string; parent_header?: { msg_id?: string }; content?: { execution_state?: string } };
      if (m.msg_type === 'status' && m.parent_header?.msg_id === msgId && m.content?.execution_state === 'busy') resolve();
    });
  });
  ws.close();
}

/** A kernel with one websocket kept open, as a JupyterLab tab keeps it. */
export interface KernelSession {
  /** Runs `code` on the open socket; resolves with its stream output and result text. */
  run(code: string, timeoutMs?: number): Promise<string>;
  /** Why the socket closed, once it has (undefined while open). */
  closedWith(): string | undefined;
  /** Closes the socket and shuts the kernel down. */
  close(): Promise<void>;
}

/** Starts a kernel at `baseUrl` and opens its channels websocket, left open until `close()`. */
export async function openKernel(baseUrl: string, token: string, headers: Record<string, string> = {}): Promise<KernelSession> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const auth = { ...headers, Authorization: `token ${token}`, 'Content-Type': 'application/json' };
  const created = await fetch(`${base}api/kernels`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'python3' }) });
  if (!created.ok) throw new Error(`POST api/kernels: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}api/kernels/${id}/channels?token=${encodeURIComponent(token)}`);
  let closed: string | undefined;
  ws.addEventListener('close', (event) => (closed = `closed (${event.code})`));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`websocket to the kernel at ${base} failed`)), { once: true });
  });
  const session = randomUUID();
  return {
    closedWith: () => closed,
    run: (code, timeoutMs = 60_000) => new Promise<string>((resolve, reject) => {
      if (closed) return reject(new Error(`the kernel's websocket is ${closed}`));
      const msgId = randomUUID();
      let output = '';
      let replied = false;
      let idle = false;
      let error: Error | undefined;
      const done = (err?: Error) => {
        clearTimeout(timer);
        ws.removeEventListener('message', onMessage);
        ws.removeEventListener('close', onClose);
        if (err) reject(err);
        else resolve(output);
      };
      const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs / 1000}s; output so far: ${output}`)), timeoutMs);
      const onClose = () => done(new Error(`the kernel's websocket ${closed ?? 'closed'} during the cell`));
      const onMessage = (event: MessageEvent) => {
        if (typeof event.data !== 'string') return;
        const msg = JSON.parse(event.data) as KernelMessage;
        if (msg.parent_header.msg_id !== msgId) return;
        const c = msg.content;
        if (msg.header.msg_type === 'stream') output += String(c.text);
        if (msg.header.msg_type === 'execute_result') output += String((c.data as Record<string, string>)['text/plain'] ?? '');
        if (msg.header.msg_type === 'error') error = new Error(`${String(c.ename)}: ${String(c.evalue)}`);
        if (msg.header.msg_type === 'execute_reply') replied = true;
        if (msg.header.msg_type === 'status' && c.execution_state === 'idle') idle = true;
        if (replied && idle) done(error);
      };
      ws.addEventListener('message', onMessage);
      ws.addEventListener('close', onClose);
      ws.send(JSON.stringify({
        channel: 'shell', buffers: [], parent_header: {}, metadata: {},
        header: { msg_id: msgId, msg_type: 'execute_request', session, username: 'test', version: '5.3', date: new Date().toISOString() },
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      }));
    }),
    close: async () => {
      ws.close();
      await fetch(`${base}api/kernels/${id}`, { method: 'DELETE', headers: auth }).then((r) => r.body?.cancel(), () => {});
    },
  };
}
