/**
 * Web mode: the built renderer and the StudioApi over HTTP + WebSocket on 127.0.0.1. It is how the UI runs
 * in a browser, against a remote training box (through an SSH tunnel) and in the end-to-end tests.
 *
 * Every request needs the random session token (from the printed URL's `?token=`, then a same-site cookie,
 * an `Authorization: Bearer` header or the WebSocket URL). A Host header that is not this server's
 * (DNS rebinding) and an Origin that is not this server's (another site in the same browser) are refused.
 *
 * API: `POST /api/call` with `{"method": "...", "params": [...]}`, and the WebSocket `/api/ws`, which also
 * carries run event subscriptions (see ClientMessage/ServerMessage in studio-api.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { CONTENT_SECURITY_POLICY } from '../api/content-security-policy.ts';
import { dispatchCall, subscribeParams, unsubscribeParams } from '../api/dispatch.ts';
import { toErrorInfo } from '../api/errors.ts';
import type { RunEvent, ServerMessage, StudioErrorCode, StudioErrorInfo } from '../api/studio-api.ts';
import { StudioService } from '../api/studio-service.ts';

export const DEFAULT_PORT = 5317;
const WEB_SOCKET_PATH = '/api/ws';
const MAX_MESSAGE_BYTES = 65 * 1024 * 1024;
const HEARTBEAT_MS = 30_000;
const PORT_ATTEMPTS = 10;
/** Most run events in one WebSocket message. */
const EVENT_BATCH = 200;

export interface WebServerOptions {
  /** Port to listen on (default 5317); when taken, the next free one is used and `notice` says so. 0 = any. */
  port?: number;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Runs and checkpoints go under `<dataDir>/runs/`. Ignored when `service` is given. */
  dataDir: string;
  /** The built renderer (index.html and assets). */
  rendererDir: string;
  templatesDir?: string;
  /** Session token; random by default. */
  token?: string;
  /** Host names besides the loopback ones that may appear in Host/Origin (a name for a remote box). */
  allowedHosts?: string[];
  /** Use this service instead of making one (it is then not shut down by close()). */
  service?: StudioService;
  version?: string;
  /** Where notices go (default: stderr). */
  log?: (line: string) => void;
}

export interface WebServer {
  /** The address to open, with the token: `http://127.0.0.1:PORT/?token=...`. */
  url: string;
  token: string;
  host: string;
  port: number;
  /** Set when the requested port was taken and another one was chosen. */
  notice?: string;
  service: StudioService;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const HOST_HEADER = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;
const WILDCARD_HOSTS = ['0.0.0.0', '::', '[::]'];

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const HTTP_STATUS: Record<StudioErrorCode, number> = {
  'unknown-method': 404,
  'bad-arguments': 400,
  'bad-message': 400,
  'not-found': 404,
  'invalid-graph': 422,
  conflict: 409,
  unsupported: 501,
  'not-available': 501,
  io: 500,
  internal: 500,
};

const bracketed = (host: string) => (host.includes(':') && !host.startsWith('[') ? `[${host}]` : host);

class Refusal {
  constructor(
    readonly status: number,
    readonly message: string,
  ) {}
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('base64url');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rendererDir = path.resolve(options.rendererDir);
  const ownsService = !options.service;
  const service =
    options.service ??
    new StudioService({
      dataDir: options.dataDir,
      mode: 'web',
      version: options.version,
      templatesDir: options.templatesDir,
      log: (level, message) => log(`${level}: ${message}`),
    });

  const allowedHosts = new Set<string>(
    [
      ...LOOPBACK_NAMES,
      ...(WILDCARD_HOSTS.includes(host) ? [] : [bracketed(host)]),
      ...(options.allowedHosts ?? []).map(bracketed),
    ].map((h) => h.toLowerCase()),
  );
  let port = 0;
  const cookieName = () => `studio-token-${port}`;

  const tokenMatches = (candidate: string | undefined): boolean => {
    if (!candidate) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  /** host:port as this server's own, by name (no DNS rebinding). */
  const isOwnAuthority = (hostname: string, urlPort: string) =>
    allowedHosts.has(hostname.toLowerCase()) && (urlPort || '80') === String(port);

  const checkRequest = (req: IncomingMessage, url: URL): Refusal | undefined => {
    const hostHeader = req.headers.host;
    let hostOk = false;
    try {
      // A bare host[:port] only: no userinfo or path for the URL parser to read around.
      if (hostHeader && HOST_HEADER.test(hostHeader)) {
        const parsed = new URL(`http://${hostHeader}`);
        hostOk = isOwnAuthority(parsed.hostname, parsed.port);
      }
    } catch {
      hostOk = false;
    }
    if (!hostOk)
      return new Refusal(
        403,
        `Refused: the Host header '${String(hostHeader).slice(0, 100)}' is not this server.`,
      );
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let originOk = false;
      try {
        const parsed = new URL(origin);
        originOk = parsed.protocol === 'http:' && isOwnAuthority(parsed.hostname, parsed.port);
      } catch {
        originOk = false;
      }
      if (!originOk)
        return new Refusal(
          403,
          `Refused: requests from the origin '${origin.slice(0, 100)}' are not allowed.`,
        );
    }
    if (!tokenMatches(requestToken(req, url))) {
      return new Refusal(
        401,
        'This Agent RL Studio server needs its session token: open the URL it printed (it ends in ?token=...).',
      );
    }
    return undefined;
  };

  const requestToken = (req: IncomingMessage, url: URL): string | undefined => {
    const fromQuery = url.searchParams.get('token');
    if (fromQuery) return fromQuery;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [name, ...value] = part.trim().split('=');
      if (name === cookieName()) return decodeURIComponent(value.join('='));
    }
    return undefined;
  };

  const setSecurityHeaders = (res: ServerResponse) => {
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // The token may be in the page URL: never send it on as a referrer.
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
  };

  const sendText = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`${text}\n`);
  };

  const sendJson = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(value));
  };

  const handleCall = async (req: IncomingMessage, res: ServerResponse) => {
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return sendJson(res, 415, {
        error: { code: 'bad-message', message: 'Send JSON (Content-Type: application/json).' },
      });
    }
    let body: string;
    try {
      body = await readBody(req, MAX_MESSAGE_BYTES);
    } catch (error) {
      return sendJson(res, 413, { error: { code: 'bad-message', message: (error as Error).message } });
    }
    let message: unknown;
    try {
      message = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { error: { code: 'bad-message', message: 'The body is not valid JSON.' } });
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return sendJson(res, 400, {
        error: { code: 'bad-message', message: 'Send {"method": "...", "params": [...]}.' },
      });
    }
    const { method, params } = message as { method?: unknown; params?: unknown };
    if (method === 'subscribe' || method === 'unsubscribe') {
      return sendJson(res, 400, {
        error: { code: 'unsupported', message: `'${method}' needs the WebSocket at ${WEB_SOCKET_PATH}.` },
      });
    }
    const reply = await dispatchCall(service, method, params, log);
    if (reply.ok) sendJson(res, 200, { result: reply.result });
    else sendJson(res, HTTP_STATUS[reply.error.code] ?? 500, { error: reply.error });
  };

  const serveStatic = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const index = path.join(rendererDir, 'index.html');
    if (!existsSync(index)) {
      return sendText(res, 503, `The UI is not built (no ${index}). Run: npm run build:web`);
    }
    let relative: string;
    try {
      relative = decodeURIComponent(url.pathname);
    } catch {
      return sendText(res, 400, 'Bad path.');
    }
    if (relative.endsWith('/')) relative += 'index.html';
    const file = path.resolve(rendererDir, `.${relative}`);
    if (file !== rendererDir && !file.startsWith(rendererDir + path.sep))
      return sendText(res, 404, 'Not found.');
    let target = file;
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      // Client-side routes (no extension) get the app; a missing asset is a 404.
      if (path.extname(file)) return sendText(res, 404, 'Not found.');
      target = index;
    }
    const body = await readFile(target);
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(target).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handleRequest = async (req: IncomingMessage, res: ServerResponse) => {
    setSecurityHeaders(res);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendText(res, 400, 'Bad request.');
    }
    const refusal = checkRequest(req, url);
    if (refusal) return sendText(res, refusal.status, refusal.message);
    if (url.searchParams.has('token')) {
      // Assets the page loads carry no token: a same-site, script-proof cookie stands in for it.
      res.setHeader(
        'Set-Cookie',
        `${cookieName()}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`,
      );
    }
    if (url.pathname === '/api/call') {
      if (req.method !== 'POST') return sendText(res, 405, 'Use POST.');
      return handleCall(req, res);
    }
    if (url.pathname === '/api/health') return sendJson(res, 200, { ok: true });
    if (url.pathname.startsWith('/api/')) return sendText(res, 404, 'Unknown API path.');
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'Method not allowed.');
    return serveStatic(req, res, url);
  };

  const server: Server = createServer((req, res) => {
    handleRequest(req, res).catch((error) => {
      log(`error: ${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}`);
      if (!res.headersSent) sendText(res, 500, 'Internal error.');
      else res.destroy();
    });
  });

  // --- WebSocket ---
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const alive = new WeakMap<WebSocket, boolean>();

  const refuseUpgrade = (socket: Duplex, status: number, message: string) => {
    const reason = status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Forbidden';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
    );
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (error) => log(`warn: WebSocket handshake: ${error.message}`));
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return refuseUpgrade(socket, 400, 'Bad request.');
    }
    const refusal = checkRequest(req, url);
    if (refusal) return refuseUpgrade(socket, refusal.status, refusal.message);
    if (url.pathname !== WEB_SOCKET_PATH) return refuseUpgrade(socket, 404, 'Not found.');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  const onConnection = (ws: WebSocket) => {
    alive.set(ws, true);
    /** Client subscription id -> service subscription id. */
    const subscriptions = new Map<string, string>();
    const send = (message: ServerMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    const replyError = (id: number | null, error: StudioErrorInfo) => send({ id, error });

    // Run events go out in batches of consecutive events per subscription, flushed after the current
    // tick: a replayed history of 100k events is 500 messages, not 100k (each message is a task on the
    // page's main thread), and live events still leave at once.
    const outgoing = new Map<string, { seq: number; events: RunEvent[] }>();
    let flushQueued = false;
    const sendBatch = (subscription: string) => {
      const batch = outgoing.get(subscription);
      if (!batch) return;
      outgoing.delete(subscription);
      send({ type: 'events', subscription, seq: batch.seq, events: batch.events });
    };
    const flushEvents = () => {
      flushQueued = false;
      for (const subscription of [...outgoing.keys()]) sendBatch(subscription);
    };
    const queueEvent = (subscription: string, seq: number, event: RunEvent) => {
      let batch = outgoing.get(subscription);
      if (batch && batch.seq + batch.events.length !== seq) {
        sendBatch(subscription);
        batch = undefined;
      }
      if (!batch) {
        batch = { seq, events: [] };
        outgoing.set(subscription, batch);
      }
      batch.events.push(event);
      if (batch.events.length >= EVENT_BATCH) sendBatch(subscription);
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flushEvents);
      }
    };

    const handle = async (raw: string) => {
      let message: unknown;
      try {
        message = JSON.parse(raw);
      } catch {
        return replyError(null, {
          code: 'bad-message',
          message: 'Messages must be JSON: {"id", "method", "params"}.',
        });
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        return replyError(null, {
          code: 'bad-message',
          message: 'Messages must be JSON objects {"id", "method", "params"}.',
        });
      }
      const { id, method, params } = message as { id?: unknown; method?: unknown; params?: unknown };
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
        return replyError(null, { code: 'bad-message', message: 'Every message needs a numeric "id".' });
      }
      if (method === 'subscribe') {
        const parsed = subscribeParams.safeParse(params);
        if (!parsed.success) {
          return replyError(id, {
            code: 'bad-arguments',
            message: `subscribe takes [runId, subscriptionId, fromSeq?]: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
          });
        }
        const [runId, clientId, fromSeq] = parsed.data;
        const previous = subscriptions.get(clientId);
        if (previous) await service.unsubscribe(previous);
        try {
          const serviceId = await service.subscribe(runId, (event, seq) => queueEvent(clientId, seq, event), {
            fromSeq,
          });
          if (ws.readyState !== ws.OPEN) return void (await service.unsubscribe(serviceId));
          subscriptions.set(clientId, serviceId);
          // The history goes before the reply, as when events were sent one by one.
          sendBatch(clientId);
          return send({ id, result: clientId });
        } catch (error) {
          return replyError(id, toErrorInfo(error));
        }
      }
      if (method === 'unsubscribe') {
        const parsed = unsubscribeParams.safeParse(params);
        if (!parsed.success)
          return replyError(id, { code: 'bad-arguments', message: 'unsubscribe takes [subscriptionId].' });
        const serviceId = subscriptions.get(parsed.data[0]);
        subscriptions.delete(parsed.data[0]);
        outgoing.delete(parsed.data[0]);
        if (serviceId) await service.unsubscribe(serviceId);
        return send({ id, result: null });
      }
      const reply = await dispatchCall(service, method, params, log);
      if (reply.ok) send({ id, result: reply.result });
      else replyError(id, reply.error);
    };

    ws.on('message', (data, isBinary) => {
      if (isBinary) return replyError(null, { code: 'bad-message', message: 'Send text (JSON) messages.' });
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8');
      handle(text).catch((error) =>
        log(`error: WebSocket message: ${(error as Error).stack ?? String(error)}`),
      );
    });
    ws.on('pong', () => alive.set(ws, true));
    ws.on('error', (error) => log(`warn: WebSocket: ${error.message}`));
    ws.on('close', () => {
      // A closed tab never stops a run: only its subscriptions end.
      for (const serviceId of subscriptions.values()) void service.unsubscribe(serviceId);
      subscriptions.clear();
    });
  };

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.get(ws)) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();

  // --- listen, moving on from a taken port ---
  const requested = options.port ?? DEFAULT_PORT;
  let notice: string | undefined;
  const candidates =
    requested === 0
      ? [0]
      : [...Array.from({ length: PORT_ATTEMPTS }, (_, i) => requested + i).filter((p) => p < 65536), 0];
  for (const candidate of candidates) {
    try {
      port = await listen(server, candidate, host);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || candidate === 0) {
        clearInterval(heartbeat);
        throw error;
      }
    }
  }
  if (port !== requested && requested !== 0) {
    notice = `Port ${requested} is taken (another server is using it); serving on port ${port} instead.`;
    log(notice);
  }

  const displayHost = WILDCARD_HOSTS.includes(host) ? '127.0.0.1' : bracketed(host);
  const url = `http://${displayHost}:${port}/?token=${token}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    token,
    host,
    port,
    notice,
    service,
    close: () => {
      closing ??= (async () => {
        clearInterval(heartbeat);
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        if (ownsService) await service.shutdown();
      })();
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error(`The request is larger than ${Math.round(limit / 1024 / 1024)} MiB.`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
