/**
 * Choosing and starting the tensor backend. `auto` takes native TensorFlow (tfjs-node) when it loads, else
 * WebGPU on a real GPU adapter (Dawn's Node binding, the `webgpu` package), else WebAssembly, else the
 * pure-JS CPU backend. A software GPU adapter (SwiftShader, llvmpipe) is slower than WebAssembly, so only
 * an explicit `webgpu` request takes one. The chosen name and adapter are reported with the run.
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

/** What Dawn says about the adapter it picked; `software` for CPU implementations of Vulkan/Metal/D3D. */
export interface GpuAdapterReport {
  description: string;
  software: boolean;
}

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|software|microsoft basic render/i;

let dawnInstalled = false;

/** Give Node a `navigator.gpu` from Dawn (once per thread) and ask it for the adapter tfjs will get. */
async function findGpuAdapter(): Promise<GpuAdapterReport> {
  type Dawn = { create(flags: string[]): unknown; globals: Record<string, unknown> };
  let dawn: Dawn;
  try {
    const moduleName = 'webgpu';
    dawn = (await import(/* @vite-ignore */ moduleName)) as Dawn;
  } catch (error) {
    throw new Error(
      `the 'webgpu' package (Dawn for Node) is not available on this platform (${(error as Error).message.split('\n')[0]})`,
    );
  }
  if (!dawnInstalled) {
    Object.assign(globalThis, dawn.globals);
    const existing = (globalThis as { navigator?: object }).navigator ?? {};
    Object.defineProperty(globalThis, 'navigator', {
      value: Object.assign(Object.create(existing), { gpu: dawn.create([]) }),
      configurable: true,
      writable: true,
    });
    dawnInstalled = true;
  }
  type Adapter = {
    info?: Record<string, unknown>;
    isFallbackAdapter?: boolean;
  };
  const gpu = (
    globalThis as unknown as { navigator: { gpu: { requestAdapter(o?: object): Promise<Adapter | null> } } }
  ).navigator.gpu;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'no GPU adapter found (no Vulkan, Metal or D3D12 driver). On Linux without a GPU, a software adapter is available with VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (Debian package chromium) and XDG_RUNTIME_DIR set.',
    );
  }
  const info = adapter.info ?? {};
  const text = (key: string) => (typeof info[key] === 'string' ? (info[key] as string) : '');
  const description =
    [text('description'), text('vendor'), text('architecture'), text('device')].filter(Boolean).join(' / ') ||
    'unnamed adapter';
  const software =
    adapter.isFallbackAdapter === true ||
    info.isFallbackAdapter === true ||
    SOFTWARE_ADAPTER.test(description);
  return { description, software };
}

// The adapter is looked for once per process: it does not come and go, and Dawn logs each failed probe.
let adapterProbe: Promise<GpuAdapterReport> | undefined;

async function startWebgpu(allowSoftware: boolean): Promise<string> {
  adapterProbe ??= findGpuAdapter();
  const adapter = await adapterProbe;
  if (adapter.software && !allowSoftware) {
    throw new Error(`only a software adapter is available (${adapter.description}); WebAssembly is faster`);
  }
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu')))
    throw new Error(`tfjs could not initialise WebGPU on ${adapter.description}`);
  await tf.ready();
  return `WebGPU (Dawn) on ${adapter.description}${adapter.software ? ' [software adapter]' : ''}`;
}

async function startCpu(): Promise<string> {
  await tf.setBackend('cpu');
  await tf.ready();
  return 'pure JavaScript CPU';
}

const starters: Record<Exclude<BackendName, 'auto'>, () => Promise<string>> = {
  tensorflow: startTensorflow,
  webgpu: () => startWebgpu(true),
  wasm: startWasm,
  cpu: startCpu,
};

export async function startBackend(requested: BackendName): Promise<BackendInfo> {
  if (requested !== 'auto') {
    const start = starters[requested];
    if (!start)
      throw new BackendError(requested, 'unknown backend (use auto, tensorflow, webgpu, wasm or cpu)');
    try {
      const detail = await start();
      return { tf, name: tf.getBackend(), detail };
    } catch (error) {
      throw new BackendError(requested, (error as Error).message);
    }
  }
  const auto: Record<Exclude<BackendName, 'auto'>, () => Promise<string>> = {
    ...starters,
    webgpu: () => startWebgpu(false),
  };
  for (const name of ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const) {
    try {
      const detail = await auto[name]();
      return { tf, name: tf.getBackend(), detail };
    } catch {
      // try the next one; `auto` only fails if even the CPU backend cannot start
    }
  }
  throw new BackendError('auto', 'no tensor backend could start');
}
