/**
 * One run's event stream in the window: subscribes through the StudioApi, folds every event into a
 * RunState at once, and tells the UI at most ~10 times a second (events arrive in bursts: a reload
 * replays a whole history, a fast run emits hundreds of events a second). React reads `view` through
 * useSyncExternalStore.
 */
import type { RunEvent, StudioApi } from '../../src-main/api/studio-api.ts';
import { RunState, type RunView } from '../run-state.ts';

/** Minimum time between two UI updates. */
export const UI_FLUSH_MS = 100;

export interface Scheduler {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const browserScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Calls `flush` at most once per `intervalMs`, trailing: the last change is always delivered. */
export class Throttle {
  private timer: unknown;
  private lastFlush = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly flush: () => void,
    private readonly intervalMs = UI_FLUSH_MS,
    private readonly scheduler: Scheduler = browserScheduler,
  ) {}

  request(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastFlush + this.intervalMs - this.scheduler.now());
    this.timer = this.scheduler.setTimeout(() => {
      this.timer = undefined;
      this.lastFlush = this.scheduler.now();
      this.flush();
    }, wait);
  }

  cancel(): void {
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export class RunStream {
  readonly state: RunState;
  private current: RunView;
  private readonly listeners = new Set<() => void>();
  private readonly throttle: Throttle;
  private subscription?: string;
  private closed = false;
  /** Called after each UI update with the events folded since the previous one (persistence). */
  onFlush?: (view: RunView) => void;

  constructor(
    private readonly api: StudioApi,
    runId: string,
    graphName: string,
    totalIterations: number,
    scheduler?: Scheduler,
  ) {
    this.state = new RunState(runId, graphName, totalIterations);
    this.current = this.state.snapshot();
    this.throttle = new Throttle(() => this.publish(), UI_FLUSH_MS, scheduler);
  }

  get runId(): string {
    return this.state.runId;
  }

  get view(): RunView {
    return this.current;
  }

  async open(): Promise<void> {
    const id = await this.api.subscribe(this.runId, (event, seq) => this.push(event, seq));
    if (this.closed) void this.api.unsubscribe(id).catch(() => {});
    else this.subscription = id;
  }

  push(event: RunEvent, seq?: number): void {
    if (this.closed) return;
    this.state.apply(event, seq);
    this.throttle.request();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): RunView => this.current;

  close(): void {
    this.closed = true;
    this.throttle.cancel();
    if (this.subscription) void this.api.unsubscribe(this.subscription).catch(() => {});
    this.subscription = undefined;
  }

  private publish(): void {
    this.current = this.state.snapshot();
    for (const listener of this.listeners) listener();
    this.onFlush?.(this.current);
  }
}
