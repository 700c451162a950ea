/**
 * Choosing and starting the tensor backend. `auto` takes native TensorFlow (tfjs-node) when it loads, else
 * WebAssembly, else the pure-JS CPU backend. The chosen name is reported with the run.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from './graph/types.ts';
import type { Tf } from './node-api.ts';

export interface BackendInfo {
  tf: Tf;
  /** tfjs backend name actually in use: 'tensorflow' | 'wasm' | 'cpu'. */
  name: string;
  /** Human-readable detail (SIMD, threads, library). */
  detail: string;
}

export class BackendError extends Error {
  constructor(
    readonly backend: string,
    message: string,
  ) {
    super(`Backend '${backend}' cannot start: ${message}`);
    this.name = 'BackendError';
  }
}

const require = createRequire(import.meta.url);
let wasmPathsSet = false;

async function startWasm(): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!wasmPathsSet) {
    const dir = path.join(
      path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
      'dist',
    );
    wasm.setWasmPaths(`${dir}${path.sep}`);
    wasmPathsSet = true;
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the WebAssembly module did not initialise');
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? wasm.getThreadsCount() : 1;
  return `WebAssembly${simd ? ' SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'}`;
}

async function startTensorflow(): Promise<string> {
  try {
    // An optional dependency: absent wherever its native library could not be downloaded.
    const moduleName = '@tensorflow/tfjs-node';
    await import(/* @vite-ignore */ moduleName);
  } catch (error) {
    throw new Error(
      `@tensorflow/tfjs-node is not installed or its native library is missing (${(error as Error).message.split('\n')[0]})`,
    );
  }
  if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node loaded but did not register');
  await tf.ready();
  return 'native TensorFlow (tfjs-node)';
}

async function startCpu(): Promise<string> {
  await tf.setBackend('cpu');
  await tf.ready();
  return 'pure JavaScript CPU';
}

const starters: Record<Exclude<BackendName, 'auto'>, () => Promise<string>> = {
  tensorflow: startTensorflow,
  wasm: startWasm,
  cpu: startCpu,
};

export async function startBackend(requested: BackendName): Promise<BackendInfo> {
  if (requested !== 'auto') {
    const start = starters[requested];
    if (!start) throw new BackendError(requested, 'unknown backend (use auto, tensorflow, wasm or cpu)');
    try {
      const detail = await start();
      return { tf, name: tf.getBackend(), detail };
    } catch (error) {
      throw new BackendError(requested, (error as Error).message);
    }
  }
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      const detail = await starters[name]();
      return { tf, name: tf.getBackend(), detail };
    } catch {
      // try the next one; `auto` only fails if even the CPU backend cannot start
    }
  }
  throw new BackendError('auto', 'no tensor backend could start');
}
