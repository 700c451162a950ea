/**
 * Web mode over real sockets: the session token, Host and Origin checks (no DNS rebinding, no cross-site
 * use), JSON calls over HTTP and WebSocket, error replies for bad messages, a taken port, and a client
 * that reconnects and carries on with the event stream from where it was, with nothing missed or repeated.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RunEvent } from '../../src-main/api/studio-api.ts';
import { startWebServer, type WebServer } from '../../src-main/server/web-server.ts';
import { createWebSocketApi, type SocketLike } from '../../src-renderer/api/ws-client.ts';
import { EventLog, tinyGraph } from '../unit/api-fixtures.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: WebServer;
let tmp: string;

function request(
  pathAndQuery: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: pathAndQuery,
        method: options.method ?? 'GET',
        headers: options.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const own = () => `127.0.0.1:${server.port}`;
const withToken = (p: string) => `${p}${p.includes('?') ? '&' : '?'}token=${server.token}`;
const wsUrl = (token = server.token) =>
  `ws://127.0.0.1:${server.port}/api/ws${token ? `?token=${token}` : ''}`;

/** Open a raw WebSocket; resolves with it, or with the HTTP status of a refused handshake. */
function openSocket(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    socket.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

/** Send one message on a raw socket and wait for the reply with that id (or an id-less error). */
function ask(socket: WebSocket, message: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const reply = JSON.parse(data.toString()) as Record<string, unknown>;
      const id = (message as { id?: unknown })?.id;
      if (reply.type === 'event') return;
      if (reply.id === id || (reply.id === null && typeof id !== 'number')) {
        socket.off('message', onMessage);
        resolve(reply);
      }
    };
    socket.on('message', onMessage);
    socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'studio-web-'));
  const rendererDir = path.join(tmp, 'renderer');
  await mkdir(path.join(rendererDir, 'assets'), { recursive: true });
  await writeFile(
    path.join(rendererDir, 'index.html'),
    '<!doctype html><title>Agent RL Studio</title><script src="./assets/app.js"></script>',
  );
  await writeFile(path.join(rendererDir, 'assets', 'app.js'), 'console.log("app");');
  await writeFile(path.join(tmp, 'secret.txt'), 'not for the web');
  server = await startWebServer({ port: 0, dataDir: path.join(tmp, 'data'), rendererDir, log: () => {} });
});

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('HTTP', () => {
  it('prints a loopback URL carrying a random token', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token.length).toBeGreaterThanOrEqual(32);
  });

  it('refuses requests without the right token', async () => {
    const none = await request('/');
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/token/);
    expect((await request('/?token=wrong')).status).toBe(401);
    expect((await request('/assets/app.js')).status).toBe(401);
    expect(
      (
        await request('/api/call', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: '{"method":"listRuns"}',
        })
      ).status,
    ).toBe(401);
  });

  it('serves the app with the token, then to the same browser through a strict cookie', async () => {
    const page = await request(withToken('/'));
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/Agent RL Studio/);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    const cookie = String(page.headers['set-cookie']?.[0] ?? '');
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const asset = await request('/assets/app.js', { headers: { Cookie: cookie.split(';')[0] } });
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toMatch(/javascript/);
  });

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    expect((await request(withToken('/'), { headers: { Host: `evil.example:${server.port}` } })).status).toBe(
      403,
    );
    expect(
      (await request(withToken('/'), { headers: { Host: `127.0.0.1:${server.port + 1}` } })).status,
    ).toBe(403);
    expect((await request(withToken('/'), { headers: { Host: `localhost:${server.port}` } })).status).toBe(
      200,
    );
  });

  it('refuses a foreign Origin', async () => {
    const call = (origin: string) =>
      request(withToken('/api/call'), {
        method: 'POST',
        headers: { Origin: origin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ method: 'listRuns', params: [] }),
      });
    expect((await call('http://evil.example')).status).toBe(403);
    expect((await call('null')).status).toBe(403);
    expect((await call(`http://${own()}.evil.example`)).status).toBe(403);
    expect((await call(`http://${own()}`)).status).toBe(200);
  });

  it('answers JSON calls, with error replies for bad ones', async () => {
    const post = (body: string, contentType = 'application/json') =>
      request('/api/call', {
        method: 'POST',
        headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': contentType },
        body,
      });
    const templates = await post(JSON.stringify({ method: 'listTemplates', params: [] }));
    expect(templates.status).toBe(200);
    expect(JSON.parse(templates.body).result.map((t: { id: string }) => t.id)).toContain('cartpole-ppo');
    const unknown = await post(JSON.stringify({ method: 'formatDisk', params: [] }));
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).error.code).toBe('unknown-method');
    expect(
      JSON.parse((await post(JSON.stringify({ method: 'getTemplate', params: [1] }))).body).error.code,
    ).toBe('bad-arguments');
    expect((await post('{not json')).status).toBe(400);
    expect((await post('[]')).status).toBe(400);
    expect((await post('{}', 'text/plain')).status).toBe(415);
    expect((await post(JSON.stringify({ method: 'subscribe', params: [] }))).status).toBe(400);
  });

  it('serves nothing outside the renderer folder', async () => {
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/../../secret.txt']) {
      const reply = await request(withToken(p));
      expect(reply.status).toBe(404);
      expect(reply.body).not.toMatch(/not for the web/);
    }
  });

  it('moves to another port when the requested one is taken, and says so', async () => {
    const second = await startWebServer({
      port: server.port,
      dataDir: path.join(tmp, 'data2'),
      rendererDir: path.join(tmp, 'renderer'),
      log: () => {},
    });
    try {
      expect(second.port).not.toBe(server.port);
      expect(second.notice).toMatch(new RegExp(`Port ${server.port} is taken`));
      expect(second.url).toContain(`:${second.port}/`);
      expect(second.token).not.toBe(server.token);
    } finally {
      await second.close();
    }
  });
});

describe('WebSocket', () => {
  it('refuses a socket without the token', async () => {
    expect(await openSocket(wsUrl(''))).toBe(401);
    expect(await openSocket(wsUrl('wrong'))).toBe(401);
  });

  it('refuses a socket from a foreign Origin or with a foreign Host', async () => {
    expect(await openSocket(wsUrl(), { origin: 'http://evil.example' })).toBe(403);
    expect(await openSocket(wsUrl(), { headers: { Host: `evil.example:${server.port}` } })).toBe(403);
    const ok = await openSocket(wsUrl(), { origin: `http://${own()}` });
    expect(ok).toBeInstanceOf(WebSocket);
    (ok as WebSocket).close();
  });

  it('answers malformed messages and unknown methods with error replies and stays open', async () => {
    const socket = (await openSocket(wsUrl())) as WebSocket;
    try {
      expect(await ask(socket, '{broken')).toMatchObject({ id: null, error: { code: 'bad-message' } });
      expect(await ask(socket, '[1,2]')).toMatchObject({ id: null, error: { code: 'bad-message' } });
      expect(await ask(socket, { method: 'listRuns' })).toMatchObject({
        id: null,
        error: { code: 'bad-message' },
      });
      expect(await ask(socket, { id: 1, method: 'rm -rf', params: [] })).toMatchObject({
        id: 1,
        error: { code: 'unknown-method' },
      });
      expect(await ask(socket, { id: 2, method: 'pauseRun', params: [{}] })).toMatchObject({
        id: 2,
        error: { code: 'bad-arguments' },
      });
      expect(await ask(socket, { id: 3, method: 'subscribe', params: ['no-such-run', 's1'] })).toMatchObject({
        id: 3,
        error: { code: 'not-found' },
      });
      expect(await ask(socket, { id: 4, method: 'subscribe', params: [] })).toMatchObject({
        id: 4,
        error: { code: 'bad-arguments' },
      });
      const ok = await ask(socket, { id: 5, method: 'listTemplates', params: [] });
      expect(Array.isArray(ok.result)).toBe(true);
    } finally {
      socket.close();
    }
  });

  it('a reconnecting client re-subscribes and gets the rest of the stream, with no gap and no repeat', async () => {
    const sockets: WebSocket[] = [];
    const states: string[] = [];
    const client = createWebSocketApi({
      url: wsUrl(),
      createSocket: (url) => {
        const socket = new WebSocket(url);
        sockets.push(socket);
        return socket as unknown as SocketLike;
      },
      reconnectDelaysMs: [50],
      onConnectionChange: (state) => states.push(state),
    });
    const log = new EventLog();
    try {
      const { runId } = await client.startRun({ graph: await tinyGraph() });
      await client.subscribe(runId, log.listener);
      await log.until('a few iterations', () => log.metrics.length >= 3);

      // The connection drops (a network blip, a sleeping laptop): the run goes on.
      sockets[0].terminate();
      const atDrop = log.metrics.length;
      await log.until(
        'events after reconnecting',
        () => sockets.length >= 2 && log.metrics.length >= atDrop + 5,
      );
      expect(states).toEqual(['open', 'connecting', 'open']);

      await client.stopRun(runId);
      await log.until('stopped', () => log.lastStatus() === 'stopped');
      expect(log.seqs).toEqual(log.seqs.map((_, i) => i));
      const iterations = log.metrics.map((m) => m.record.iteration);
      expect(iterations).toEqual(iterations.map((_, i) => i));

      // A new page (a reload) subscribing gets the whole history, the same events.
      const reloaded = createWebSocketApi({
        url: wsUrl(),
        createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
      });
      try {
        const replay = new EventLog();
        await reloaded.subscribe(runId, replay.listener);
        await replay.until('the history', () => replay.events.length >= log.events.length);
        expect(replay.events).toEqual(log.events as RunEvent[]);
        const listed = (await reloaded.listRuns()).find((r) => r.id === runId);
        expect(listed).toMatchObject({ status: 'stopped', resumable: true });
      } finally {
        reloaded.close();
      }
    } finally {
      client.close();
    }
  });

  it('a closed connection never stops a run', async () => {
    const client = createWebSocketApi({
      url: wsUrl(),
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    });
    const { runId } = await client.startRun({ graph: await tinyGraph() });
    const log = new EventLog();
    await client.subscribe(runId, log.listener);
    await log.until('running', () => log.metrics.length >= 1);
    client.close();

    const other = createWebSocketApi({
      url: wsUrl(),
      createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    });
    try {
      const later = new EventLog();
      await other.subscribe(runId, later.listener);
      const seen = later.metrics.length;
      await later.until('the run to go on', () => later.metrics.length >= seen + 3);
      await other.stopRun(runId);
      await later.until('stopped', () => later.lastStatus() === 'stopped');
    } finally {
      other.close();
    }
  });
});
