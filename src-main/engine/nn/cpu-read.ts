/**
 * Synchronous tensor read-back, for host ops inside autodiff (`customGrad` forward and gradient functions
 * cannot await). Only on the CPU backends, where a tensor's data already lives in host memory and the read
 * is a copy; elsewhere (WebGPU) a synchronous read stalls or throws, so it is refused. Callers check
 * `isCpuBackend` first and use tensor ops otherwise. The one place the engine reads synchronously.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../node-api.ts';

export function isCpuBackend(tf: Tf): boolean {
  const backend = tf.getBackend();
  return backend === 'wasm' || backend === 'cpu';
}

export function readOnCpu(tf: Tf, tensor: TF.Tensor): Float32Array {
  if (!isCpuBackend(tf)) throw new Error(`a host op read a tensor on the ${tf.getBackend()} backend`);
  return tensor.dataSync() as Float32Array;
}

/**
 * Values for `tf.tensor` from a buffer the caller will overwrite: the wasm backend copies them into its
 * heap at once; the cpu backend keeps the array it is given, so it gets a copy.
 */
export function tensorValues(tf: Tf, values: Float32Array): Float32Array {
  return tf.getBackend() === 'wasm' ? values : values.slice();
}

/** What `readInto` looks for on tfjs-backend-wasm (4.x): its tensor table and its heap. */
interface WasmBackendHeap {
  dataIdMap?: { get(dataId: object): { memoryOffset?: number | null } | undefined };
  wasm?: { HEAPF32?: Float32Array };
}

/**
 * Copies a float32 tensor's values into `target` at `offset`: on the wasm backend straight from its heap
 * (one copy, no array allocated per read), elsewhere through `readOnCpu`.
 */
export function readInto(tf: Tf, tensor: TF.Tensor, target: Float32Array, offset = 0): void {
  if (tensor.dtype === 'float32' && tf.getBackend() === 'wasm') {
    const backend = tf.backend() as unknown as WasmBackendHeap;
    const at = backend.dataIdMap?.get(tensor.dataId)?.memoryOffset;
    const heap = backend.wasm?.HEAPF32; // read each time: the heap is replaced when it grows
    if (typeof at === 'number' && heap) {
      target.set(heap.subarray(at / 4, at / 4 + tensor.size), offset);
      return;
    }
  }
  target.set(readOnCpu(tf, tensor), offset);
}

/** `readOnCpu` for int32 tensors (token ids). */
export function readIntsOnCpu(tf: Tf, tensor: TF.Tensor): Int32Array {
  if (tensor.dtype !== 'int32') throw new Error(`expected an int32 tensor, got ${tensor.dtype}`);
  return readOnCpu(tf, tensor) as unknown as Int32Array;
}
