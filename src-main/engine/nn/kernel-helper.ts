/**
 * A second thread for the host kernels: a worker that instantiates the same SIMD module on an arena's
 * shared memory and runs one part of a kernel (a matrix product, the attention of some (sequence, head)
 * pairs, some rows of a layer norm) while the calling thread runs the other. tfjs-wasm
 * runs single-threaded under Node, so without this a training step uses one of the machine's cores.
 *
 * Hand-off through a shared Int32Array, no messages per call:
 *   [0] state: 5 starting, 0 idle, 1 job posted, 6 job taken by the worker, 2 job done, 3 stop,
 *       4 job failed;  [1] kernel;
 *   [2] units claimed, [3] 1 for a chunked job (0: a plain one), [4] the count argument, [5] count,
 *   [6] the granule (chunks are whole granules);
 *   [7] the argument the worker's chunks offset (-1: none); [8..20] arguments, [21..33] their strides per
 *   unit (chunked jobs: runChunks); [34] the worker's offset
 * The caller posts a job (state 1, notify) and computes its own part. The worker takes a job by moving the
 * state from 1 to 6 (compare-exchange). If the caller finds the job still untaken when its part is done
 * (the worker asleep or still waking: ~0.1 ms on a virtual machine), it takes the job back (1 -> 0, the
 * same compare-exchange) and runs the worker's part itself; else it waits until the state leaves 6.
 * The worker is plain JavaScript given as source (no bundled file to locate), and is unref'd, so it never
 * keeps a process alive. Until it leaves state 5 (a flag, not a message: a training loop that never
 * yields to the event loop would never see one), kernels run on the calling thread alone.
 */

/** The kernels the helper runs, by index in the worker's table. */
export enum HelperKernel {
  mm = 0,
  mmNN = 1,
  mmTN = 2,
  attnFwd = 3,
  attnBwd = 4,
  lnFwd = 5,
  lnBwdRows = 6,
  biasAct = 7,
  actGrad = 8,
  scaleBy = 9,
  packPanels = 10,
  mmNNPacked = 11,
  mmTNPacked = 12,
  transposeInto = 13,
  logSoftmaxFwd = 14,
  logSoftmaxBwd = 15,
}

/**
 * How long each side polls the shared state before it sleeps in Atomics.wait: waking a sleeping thread
 * takes ~0.1 ms on a virtual machine (measured here: a job's round trip 90-200 us asleep), and a training
 * step hands the helper ~160 jobs, each a few hundred us to a few ms apart. Polling keeps the hand-off to
 * microseconds while jobs come; between bursts (the tfjs head, the optimiser) both sides sleep.
 */
const SPIN_MS = 1;

/** The control array's fields after [0] state and [1] kernel (see the class comment). */
const NEXT = 2;
const CHUNKS = 3;
const COUNT_ARG = 4;
const COUNT = 5;
const CHUNK = 6;
const WORKER_ARG = 7;
const ARGS = 8;
const MAX_ARGS = 13;
const STRIDES = ARGS + MAX_ARGS;
const WORKER_OFFSET = STRIDES + MAX_ARGS;
const CONTROL_INTS = WORKER_OFFSET + 1;

/**
 * Claims chunks of a chunked job until none is left, and runs each: a chunk is a quarter of the units
 * not yet claimed, in whole granules (guided scheduling: large chunks first, small ones last, so the
 * thread that finishes first waits for at most a small one). Argument j is base_j + first unit *
 * stride_j, and argument COUNT_ARG the chunk's number of units; on the worker, argument WORKER_ARG (when
 * >= 0) also takes WORKER_OFFSET (its own scratch). Both threads claim from one counter (NEXT: the units
 * claimed), so the faster one takes more. (Plain JavaScript: also pasted into the worker's source.)
 */
function runChunks(
  c: Int32Array,
  kernel: (...args: number[]) => void,
  args: number[],
  worker: boolean,
): void {
  const [count, granule] = [c[5], c[6]]; // COUNT, CHUNK (the granule)
  for (;;) {
    const first = Atomics.load(c, 2); // NEXT
    if (first >= count) return;
    const size = Math.max(1, Math.ceil((count - first) / (4 * granule))) * granule;
    if (Atomics.compareExchange(c, 2, first, first + size) !== first) continue;
    for (let j = 0; j < 13; j++) args[j] = c[8 + j] + first * c[21 + j]; // ARGS, STRIDES, MAX_ARGS
    args[c[4]] = Math.min(size, count - first); // COUNT_ARG
    if (worker && c[7] >= 0) args[c[7]] += c[34]; // WORKER_ARG, WORKER_OFFSET
    kernel(...args);
  }
}

/** The kernels' export names by HelperKernel index (the enum's names are the module's export names). */
function helperKernelNames(): string[] {
  return Object.values(HelperKernel).filter((v): v is string => typeof v === 'string');
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control } = workerData;
const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
const table = ${JSON.stringify(helperKernelNames())}.map((name) => k[name]);
const c = new Int32Array(control);
const SPIN_MS = ${SPIN_MS};
const [CHUNKS, ARGS, MAX_ARGS] = [${CHUNKS}, ${ARGS}, ${MAX_ARGS}];
const args = new Array(MAX_ARGS).fill(0);
${runChunks.toString()}
Atomics.store(c, 0, 0);
parentPort.postMessage('ready');
for (;;) {
  // Poll for the next job a while before sleeping (see SPIN_MS).
  let state = Atomics.load(c, 0);
  if (state !== 1 && state !== 3) {
    const until = performance.now() + SPIN_MS;
    do {
      for (let i = 0; i < 64 && state !== 1 && state !== 3; i++) state = Atomics.load(c, 0);
    } while (state !== 1 && state !== 3 && performance.now() < until);
  }
  if (state !== 1 && state !== 3) {
    Atomics.wait(c, 0, state);
    continue;
  }
  if (state === 1) {
    // Taken back by the caller in the meantime: nothing to do.
    if (Atomics.compareExchange(c, 0, 1, 6) !== 1) continue;
    let done = 2;
    try {
      const kernel = table[c[1]];
      if (c[CHUNKS] === 0) kernel(...c.subarray(ARGS, ARGS + MAX_ARGS));
      else runChunks(c, kernel, args, true);
    } catch {
      done = 4;
    }
    Atomics.store(c, 0, done);
    Atomics.notify(c, 0);
  } else break;
}
`;

interface WorkerLike {
  on(event: 'message' | 'error' | 'exit', listener: (value: unknown) => void): void;
  unref(): void;
}
type WorkerConstructor = new (source: string, options: { eval: true; workerData: unknown }) => WorkerLike;

let enabled = true;

/** Turn helpers off (or back on) for arenas made from now on: one-thread runs, e.g. for comparisons. */
export function enableKernelHelpers(on: boolean): void {
  enabled = on;
}

/** Node's Worker, looked up at run time so that a browser bundle of the engine never imports it. */
function workerConstructor(): WorkerConstructor | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const threads = proc?.getBuiltinModule?.('node:worker_threads') as
    | { Worker?: WorkerConstructor }
    | undefined;
  return threads?.Worker;
}

/** Whether an arena made now gets a helper: enabled, shared memory, and worker threads all present. */
export function kernelHelperAvailable(): boolean {
  return enabled && typeof SharedArrayBuffer !== 'undefined' && workerConstructor() !== undefined;
}

export class KernelHelper {
  /** Resolves true when the worker serves jobs, false if it failed to start. */
  readonly ready: Promise<boolean>;
  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_INTS * 4));
  private readonly args = new Array<number>(MAX_ARGS).fill(0);
  private stopped = false;
  /** Jobs this thread took back from the worker (untaken when its own part was done). */
  takenBack = 0;

  /** This thread's entry points of the worker's kernels (the same module on the same memory), by index. */
  private readonly local: ((...args: number[]) => void)[];

  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    exports: Record<string, (...args: number[]) => void>,
  ) {
    this.local = helperKernelNames().map((name) => exports[name]);
    this.control[0] = 5;
    const Worker = workerConstructor();
    if (!Worker) throw new Error('KernelHelper: worker threads are not available here');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory, control: this.control.buffer },
    });
    this.ready = new Promise((resolve) => {
      worker.on('message', () => resolve(true));
      const down = () => {
        this.stopped = true;
        resolve(false);
      };
      worker.on('error', down);
      worker.on('exit', down);
    });
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
  }

  /** Whether jobs can go to the worker now. */
  serving(): boolean {
    return !this.stopped && Atomics.load(this.control, 0) === 0;
  }

  /** Runs `kernel(args)` on the worker while `mine` runs here; returns when both are done. */
  run(kernel: HelperKernel, args: number[], mine: () => void): void {
    const c = this.control;
    c[CHUNKS] = 0;
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i];
    this.job(kernel, mine, () => this.local[kernel](...args));
  }

  /**
   * Runs `kernel` over `count` units of its split dimension (rows, pairs, elements) in chunks of whole
   * `granule`s of units, which this thread and the worker claim from one counter (runChunks): a thread
   * that is slowed down takes fewer. `local` is this thread's entry point of the same kernel; `args` are the whole job's
   * arguments and `strides` what one unit adds to each (0 for those that stay). With `workerScratch`,
   * the worker's chunks get argument `arg` plus `bytes` (a scratch of its own). Chunks are independent,
   * so the numbers do not depend on which thread ran which.
   */
  runChunked(
    kernel: HelperKernel,
    local: (...args: number[]) => void,
    args: number[],
    strides: number[],
    countArg: number,
    count: number,
    granule: number,
    workerScratch?: { arg: number; bytes: number },
  ): void {
    const c = this.control;
    c[NEXT] = 0;
    c[WORKER_ARG] = workerScratch?.arg ?? -1;
    c[WORKER_OFFSET] = workerScratch?.bytes ?? 0;
    c[CHUNKS] = 1;
    c[COUNT_ARG] = countArg;
    c[COUNT] = count;
    c[CHUNK] = granule;
    for (let j = 0; j < MAX_ARGS; j++) {
      c[ARGS + j] = args[j] ?? 0;
      c[STRIDES + j] = strides[j] ?? 0;
    }
    const claim = () => runChunks(c, local, this.args, false);
    this.job(kernel, claim, claim);
  }

  /**
   * Posts the job in the control array, runs `mine` here, then waits for the worker, or, when the worker
   * has not taken the job yet, takes it back and runs `theirs` here too.
   */
  private job(kernel: HelperKernel, mine: () => void, theirs: () => void): void {
    const c = this.control;
    c[1] = kernel;
    Atomics.store(c, 0, 1);
    Atomics.notify(c, 0);
    // Wait for the worker even if this thread's part throws, so no job is left running into the next one.
    let failure: unknown;
    try {
      mine();
    } catch (error) {
      failure = error;
    }
    if (Atomics.compareExchange(c, 0, 1, 0) === 1) {
      this.takenBack++;
      if (failure !== undefined) throw failure;
      theirs();
      return;
    }
    let state = Atomics.load(c, 0);
    const until = performance.now() + SPIN_MS;
    while (state === 6 && performance.now() < until) {
      for (let i = 0; i < 64 && state === 6; i++) state = Atomics.load(c, 0);
    }
    // A worker that died cannot say so while this thread blocks: give up after a minute.
    for (let waited = 0; state === 6 && waited < 60; waited++) {
      Atomics.wait(c, 0, 6, 1000);
      state = Atomics.load(c, 0);
    }
    if (state === 6) {
      this.stop();
      throw new Error(`kernel helper: no answer from the worker for ${HelperKernel[kernel]}`);
    }
    Atomics.store(c, 0, 0);
    if (failure !== undefined) throw failure;
    if (state !== 2) throw new Error(`kernel helper: ${HelperKernel[kernel]} failed on the worker`);
  }

  /** Ends the worker (it exits its loop). */
  stop(): void {
    this.stopped = true;
    Atomics.store(this.control, 0, 3);
    Atomics.notify(this.control, 0);
  }
}
