/**
 * A run in its own worker thread, controlled from the calling thread. Training never blocks the caller
 * (the Electron main process, the web server); a crash of the worker is reported, never propagated.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RunEvent, RunStatus } from '../events.ts';
import { RunControl } from './control.ts';
import type { RunOptions, RunResult } from './run.ts';
import type { WorkerInput, WorkerMessage } from './worker.ts';

export type WorkerRunOptions = Omit<RunOptions, 'registry' | 'control' | 'onEvent'>;
export type RunSummary = Omit<RunResult, 'metrics'>;

/**
 * The worker's code: `worker.js` beside this module once bundled, else `worker.ts`, started from a small
 * inline bootstrap because
 * - Node 20 ignores `--import tsx` in a worker's execArgv, so the bootstrap registers tsx in the thread;
 * - `Atomics.waitAsync` (a paused run) does not keep a thread's event loop alive, so without the
 *   bootstrap's timer a paused worker would exit; the timer ends when the worker module settles.
 */
function workerEntry(): { script: string; eval: boolean } {
  const js = new URL('./worker.js', import.meta.url);
  const bundled = js.protocol === 'file:' && existsSync(fileURLToPath(js));
  const entry = bundled ? js.href : new URL('./worker.ts', import.meta.url).href;
  let register = '';
  if (!bundled) {
    const resolve = (import.meta as { resolve?: (specifier: string) => string }).resolve;
    const tsxApi =
      typeof resolve === 'function'
        ? resolve('tsx/esm/api')
        : pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href.replace(/\.cjs$/, '.mjs');
    register = `(await import(${JSON.stringify(tsxApi)})).register();`;
  }
  const bootstrap = `const keepAlive = setInterval(() => {}, 1 << 30);
(async () => { ${register} await import(${JSON.stringify(entry)}); })().finally(() => clearInterval(keepAlive));`;
  return { script: bootstrap, eval: true };
}

export class WorkerRun {
  readonly control = new RunControl();
  /** Every event so far, so that a late subscriber (a reloaded window) sees the whole run. */
  readonly history: RunEvent[] = [];
  readonly done: Promise<RunSummary>;
  private readonly listeners = new Set<(event: RunEvent) => void>();
  private readonly worker: Worker;
  private finished = false;
  status: RunStatus = 'starting';

  constructor(options: WorkerRunOptions) {
    const entry = workerEntry();
    const input: WorkerInput = { options, controlBuffer: this.control.buffer };
    this.worker = new Worker(entry.script, { workerData: input, eval: entry.eval });
    this.done = new Promise<RunSummary>((resolve) => {
      this.worker.on('message', (message: WorkerMessage) => {
        if (message.kind === 'event') this.record(message.event);
        else {
          this.finished = true;
          resolve(message.result);
          void this.worker.terminate();
        }
      });
      const crashed = (reason: string) => {
        if (this.finished) return;
        this.finished = true;
        const message = `The training worker crashed: ${reason}. The last checkpoint can be resumed.`;
        const iteration = this.lastIteration();
        this.record({ type: 'error', message });
        this.record({ type: 'status', status: 'failed', iteration, message });
        resolve({ status: 'failed', iteration, envSteps: 0, error: { message }, timings: {} });
      };
      this.worker.on('error', (error) => crashed(error.message));
      this.worker.on('exit', (code) => crashed(`it exited with code ${code}`));
    });
  }

  on(listener: (event: RunEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  pause(): void {
    this.control.pause();
  }

  resume(): void {
    this.control.resume();
  }

  step(iterations = 1): void {
    this.control.step(iterations);
  }

  stop(): void {
    this.control.stop();
  }

  /** Kill the worker at once (no checkpoint is written): used on crash tests and app quit. */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  private lastIteration(): number {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const e = this.history[i];
      if (e.type === 'status' || e.type === 'checkpoint') return e.iteration;
      if (e.type === 'metrics') return e.record.iteration + 1;
    }
    return 0;
  }

  private record(event: RunEvent): void {
    if (event.type === 'status') this.status = event.status;
    // Trajectory samples are the bulk of a long run's events and nobody reads them back from here.
    if (event.type !== 'samples') this.history.push(event);
    for (const listener of this.listeners) listener(event);
  }
}
