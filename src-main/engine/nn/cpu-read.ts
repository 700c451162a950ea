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
 * `readOnCpu` into an array the caller owns: the wasm backend's read is a copy already (of its heap); the
 * cpu backend hands out its own array, so that one is copied.
 */
export function readCopyOnCpu(tf: Tf, tensor: TF.Tensor): Float32Array {
  const values = readOnCpu(tf, tensor);
  return tf.getBackend() === 'wasm' ? values : values.slice();
}

/**
 * Values for `tf.tensor` from a buffer the caller will overwrite: the wasm backend copies them into its
 * heap at once; the cpu backend keeps the array it is given, so it gets a copy.
 */
export function tensorValues(tf: Tf, values: Float32Array): Float32Array {
  return tf.getBackend() === 'wasm' ? values : values.slice();
}

/** `readOnCpu` for int32 tensors (token ids). */
export function readIntsOnCpu(tf: Tf, tensor: TF.Tensor): Int32Array {
  if (tensor.dtype !== 'int32') throw new Error(`expected an int32 tensor, got ${tensor.dtype}`);
  return readOnCpu(tf, tensor) as unknown as Int32Array;
}
