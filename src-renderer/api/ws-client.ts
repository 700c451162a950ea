/**
 * StudioApi over the web server's WebSocket (web mode). Reconnects by itself; after a reconnect every
 * subscription is renewed from the last event it delivered, so a listener sees each event once, in order,
 * with no gap. Works with the browser's WebSocket and, in tests, with the `ws` package's.
 */
import type {
  ClientMessage,
  RunEventListener,
  ServerMessage,
  StudioApi,
  StudioCallMethod,
  StudioErrorCode,
  StudioErrorInfo,
} from '../../src-main/api/studio-api.ts';

/** The part of the WebSocket interface this client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface WebSocketApiOptions {
  /** ws://host:port/api/ws?token=... */
  url: string;
  createSocket?: (url: string) => SocketLike;
  /** Delays between reconnection attempts, the last one repeated. */
  reconnectDelaysMs?: number[];
  onConnectionChange?: (state: ConnectionState) => void;
}

export interface WebSocketApi extends StudioApi {
  /** Close for good (no reconnection). */
  close(): void;
  readonly connectionState: ConnectionState;
}

/** An error reply from the studio, with its code and, for graphs, diagnostics. */
export class StudioRequestError extends Error {
  readonly code: StudioErrorCode | 'connection-lost';
  readonly diagnostics: StudioErrorInfo['diagnostics'];

  constructor(info: StudioErrorInfo | { code: 'connection-lost'; message: string }) {
    super(info.message);
    this.name = 'StudioRequestError';
    this.code = info.code;
    this.diagnostics = 'diagnostics' in info ? info.diagnostics : undefined;
  }
}

const OPEN = 1;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Subscription {
  runId: string;
  listener: RunEventListener;
  lastSeq: number;
}

export function createWebSocketApi(options: WebSocketApiOptions): WebSocketApi {
  const createSocket = options.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
  const delays = options.reconnectDelaysMs ?? [200, 500, 1000, 2000, 5000];
  const pending = new Map<number, Pending>();
  /** Requests written while no socket was open: sent on the next open. */
  const queue: { id: number; text: string }[] = [];
  const subscriptions = new Map<string, Subscription>();
  let socket: SocketLike | undefined;
  let nextId = 1;
  let nextSubscription = 1;
  let attempt = 0;
  let closedForGood = false;
  let state: ConnectionState = 'connecting';
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  const setState = (next: ConnectionState) => {
    if (state === next) return;
    state = next;
    options.onConnectionChange?.(next);
  };

  const transmit = (id: number, text: string) => {
    if (socket && socket.readyState === OPEN) socket.send(text);
    else queue.push({ id, text });
  };

  const request = (message: Omit<ClientMessage, 'id'>): Promise<unknown> => {
    if (closedForGood)
      return Promise.reject(
        new StudioRequestError({ code: 'connection-lost', message: 'The connection is closed.' }),
      );
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      transmit(id, JSON.stringify({ ...message, id }));
    });
  };

  const resubscribe = () => {
    for (const [subscription, sub] of subscriptions) {
      request({ method: 'subscribe', params: [sub.runId, subscription, sub.lastSeq + 1] }).catch(
        (error: StudioRequestError) => {
          if (error.code === 'connection-lost') return; // renewed again on the next connection
          // The run is gone (its folder removed): tell the listener through an error event.
          subscriptions.delete(subscription);
          sub.listener(
            { type: 'error', message: `Lost the run's event stream: ${error.message}` },
            sub.lastSeq + 1,
          );
        },
      );
    }
  };

  const onMessage = (data: unknown) => {
    let message: ServerMessage;
    try {
      message = JSON.parse(typeof data === 'string' ? data : String(data)) as ServerMessage;
    } catch {
      return;
    }
    if ('type' in message && message.type === 'event') {
      const sub = subscriptions.get(message.subscription);
      if (!sub || message.seq <= sub.lastSeq) return;
      sub.lastSeq = message.seq;
      sub.listener(message.event, message.seq);
      return;
    }
    if ('type' in message && message.type === 'events') {
      for (let i = 0; i < message.events.length; i++) {
        // Looked up per event: a listener may unsubscribe in the middle of a batch.
        const sub = subscriptions.get(message.subscription);
        const seq = message.seq + i;
        if (!sub) return;
        if (seq <= sub.lastSeq) continue;
        sub.lastSeq = seq;
        sub.listener(message.events[i]!, seq);
      }
      return;
    }
    if (!('id' in message) || message.id === null) {
      if ('error' in message) console.error(`Studio server: ${message.error.message}`);
      return;
    }
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    if ('error' in message) waiting.reject(new StudioRequestError(message.error));
    else waiting.resolve(message.result);
  };

  const connect = () => {
    setState('connecting');
    const current = createSocket(options.url);
    socket = current;
    current.onopen = () => {
      attempt = 0;
      setState('open');
      // Renewed subscriptions go first, so their missed events come before anything else.
      resubscribe();
      for (const { text } of queue.splice(0)) current.send(text);
    };
    current.onmessage = (event) => onMessage(event.data);
    current.onerror = () => {
      // onclose follows and handles reconnection.
    };
    current.onclose = () => {
      if (socket !== current) return;
      socket = undefined;
      // Calls sent but not answered may or may not have happened: their callers decide.
      for (const [id, waiting] of pending) {
        if (!queue.some((queued) => queued.id === id)) {
          pending.delete(id);
          waiting.reject(
            new StudioRequestError({
              code: 'connection-lost',
              message: 'The connection to the studio was lost.',
            }),
          );
        }
      }
      if (closedForGood) return setState('closed');
      setState('connecting');
      const delay = delays[Math.min(attempt, delays.length - 1)] ?? 1000;
      attempt += 1;
      reconnectTimer = setTimeout(connect, delay);
    };
  };
  connect();

  const call =
    <M extends StudioCallMethod>(method: M) =>
    (...params: Parameters<StudioApi[M]>) =>
      request({ method, params } as Omit<ClientMessage, 'id'>) as ReturnType<StudioApi[M]>;

  return {
    get connectionState() {
      return state;
    },
    close() {
      closedForGood = true;
      clearTimeout(reconnectTimer);
      socket?.close();
      setState('closed');
    },
    getInfo: call('getInfo'),
    catalog: call('catalog'),
    validate: call('validate'),
    migrateGraph: call('migrateGraph'),
    listTemplates: call('listTemplates'),
    getTemplate: call('getTemplate'),
    openGraphFile: call('openGraphFile'),
    saveGraphFile: call('saveGraphFile'),
    exportGraph: call('exportGraph'),
    startRun: call('startRun'),
    pauseRun: call('pauseRun'),
    resumeRun: call('resumeRun'),
    stepRun: call('stepRun'),
    stopRun: call('stopRun'),
    resumeRunFromCheckpoint: call('resumeRunFromCheckpoint'),
    listRuns: call('listRuns'),
    deleteRun: call('deleteRun'),
    async subscribe(runId, listener) {
      const subscription = `c${nextSubscription++}`;
      subscriptions.set(subscription, { runId, listener, lastSeq: -1 });
      try {
        await request({ method: 'subscribe', params: [runId, subscription, 0] });
      } catch (error) {
        // A lost connection renews the subscription when it comes back; any other error is final.
        if (error instanceof StudioRequestError && error.code === 'connection-lost') return subscription;
        subscriptions.delete(subscription);
        throw error;
      }
      return subscription;
    },
    async unsubscribe(subscription) {
      if (!subscriptions.delete(subscription)) return;
      await request({ method: 'unsubscribe', params: [subscription] }).catch(() => {
        // The server drops a closed connection's subscriptions by itself.
      });
    },
  };
}
