/**
 * Run control shared between the thread that asks (UI, CLI) and the thread that trains. The state lives
 * in a SharedArrayBuffer so that a pause is seen at the very next control point, with no message to
 * wait for, and a control point while running costs one atomic load.
 */
import type { ControlPoint } from '../node-api.ts';

const COMMAND = 0;
const STEPS = 1;
const GENERATION = 2;
const RUN = 0;
const PAUSE = 1;
const STOP = 2;

/** Thrown out of a control point when the run is stopped. */
export class StopSignal extends Error {
  constructor() {
    super('run stopped');
    this.name = 'StopSignal';
  }
}

export class RunControl implements ControlPoint {
  readonly buffer: SharedArrayBuffer;
  private readonly cells: Int32Array;
  /** True while a Step lets one iteration run through a pause. */
  private stepping = false;
  private lastYield = 0;
  /** Called by the training side each time it actually blocks (paused) or continues. */
  onWait: (waiting: boolean) => void = () => {};

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
    this.cells = new Int32Array(this.buffer);
  }

  // --- asking side ---
  pause(): void {
    this.set(PAUSE, 0);
  }

  resume(): void {
    this.set(RUN, 0);
  }

  stop(): void {
    this.set(STOP, 0);
  }

  /** While paused, let exactly `iterations` more iterations run. */
  step(iterations = 1): void {
    if (Atomics.load(this.cells, COMMAND) === STOP) return;
    Atomics.store(this.cells, COMMAND, PAUSE);
    Atomics.add(this.cells, STEPS, iterations);
    this.bump();
  }

  get requested(): 'running' | 'paused' | 'stopped' {
    const c = Atomics.load(this.cells, COMMAND);
    return c === STOP ? 'stopped' : c === PAUSE ? 'paused' : 'running';
  }

  private set(command: number, steps: number): void {
    if (Atomics.load(this.cells, COMMAND) === STOP) return;
    Atomics.store(this.cells, STEPS, steps);
    Atomics.store(this.cells, COMMAND, command);
    this.bump();
  }

  private bump(): void {
    Atomics.add(this.cells, GENERATION, 1);
    Atomics.notify(this.cells, GENERATION);
  }

  // --- training side ---
  /** Between environment steps and minibatches: returns at once unless paused or stopped. */
  async point(): Promise<void> {
    await this.yieldNow();
    for (;;) {
      const command = Atomics.load(this.cells, COMMAND);
      if (command === RUN) return;
      if (command === STOP) throw new StopSignal();
      // A Step while paused mid-iteration lets the current iteration finish, then pause again.
      if (this.stepping || this.takeStep()) return;
      await this.waitForChange();
    }
  }

  private takeStep(): boolean {
    const steps = Atomics.load(this.cells, STEPS);
    if (steps > 0 && Atomics.compareExchange(this.cells, STEPS, steps, steps - 1) === steps) {
      this.stepping = true;
      return true;
    }
    return false;
  }

  /** At the start of each iteration: consumes a Step, or waits while paused. */
  async iterationBoundary(): Promise<void> {
    this.stepping = false;
    await this.yieldNow();
    for (;;) {
      const command = Atomics.load(this.cells, COMMAND);
      if (command === RUN) return;
      if (command === STOP) throw new StopSignal();
      if (this.takeStep()) return;
      await this.waitForChange();
    }
  }

  /**
   * Let timers, signals and messages of this thread run every ~20 ms: awaiting tensor reads only drains
   * microtasks, so without this a run in the caller's own thread (CLI, tests) would never see Ctrl-C.
   */
  private async yieldNow(): Promise<void> {
    const now = performance.now();
    if (now - this.lastYield < 20) return;
    this.lastYield = now;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Block (asynchronously) until the asking side changes something. */
  private async waitForChange(): Promise<void> {
    const generation = Atomics.load(this.cells, GENERATION);
    const command = Atomics.load(this.cells, COMMAND);
    if (command === RUN || command === STOP) return;
    if (Atomics.load(this.cells, STEPS) > 0 && !this.stepping) return;
    this.onWait(true);
    const result = Atomics.waitAsync(this.cells, GENERATION, generation);
    if (result.async) await result.value;
    this.onWait(false);
  }
}
