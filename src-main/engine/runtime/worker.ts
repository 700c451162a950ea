/** Entry of the training worker thread: runs one graph with the node library and streams its events. */
import { parentPort, workerData } from 'node:worker_threads';
import { createRegistry } from '../../../nodes/index.ts';
import { RunControl } from './control.ts';
import { executeRun, type RunOptions } from './run.ts';

export interface WorkerInput {
  options: Omit<RunOptions, 'registry' | 'control' | 'onEvent'>;
  controlBuffer: SharedArrayBuffer;
}

export type WorkerMessage =
  | { kind: 'event'; event: import('../events.ts').RunEvent }
  | { kind: 'done'; result: Omit<import('./run.ts').RunResult, 'metrics'> };

const input = workerData as WorkerInput;
const port = parentPort!;
const result = await executeRun({
  ...input.options,
  registry: createRegistry(),
  control: new RunControl(input.controlBuffer),
  onEvent: (event) => port.postMessage({ kind: 'event', event } satisfies WorkerMessage),
});
const { metrics: _metrics, ...summary } = result;
port.postMessage({ kind: 'done', result: summary } satisfies WorkerMessage);
