/**
 * Adam (Kingma & Ba 2015) with PyTorch's update rule and global gradient-norm clipping, owned by the
 * trainer so that its moments are saved in checkpoints and the learning rate can be annealed per iteration.
 *   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * The update runs on the host, in WebAssembly kernels over all tensors at once (wasm-adam.ts, float64 as
 * the rule is written here in JavaScript: the reference in the tests): it replaces about eight tensor ops
 * per parameter tensor (each with fixed per-op overhead) with one read and one write.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../node-api.ts';
import { isCpuBackend, readInto, tensorValues } from './cpu-read.ts';
import { ADAM_CONSTANTS } from './wasm-adam.ts';
import { arenaFloats, SimdArena, type SimdBuffer } from './wasm-simd.ts';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
}

export class Adam {
  /** Parameters, gradients, m, v, each all tensors end to end, then the kernel's constants. */
  private readonly arena: SimdArena;
  private readonly p: SimdBuffer;
  private readonly g: SimdBuffer;
  private readonly m: SimdBuffer;
  private readonly v: SimdBuffer;
  private readonly constants: SimdBuffer;
  /** Each tensor's first element in the end-to-end buffers. */
  private readonly starts: number[];
  private readonly total: number;
  /**
   * Each parameter's tensor data as this optimiser last wrote it (`assign` gives a variable new data):
   * while a variable still holds it, the host copy in `p` is its value and need not be read back.
   */
  private readonly written: unknown[] = [];
  step = 0;

  constructor(
    private readonly tf: Tf,
    private readonly params: TF.Variable[],
    private readonly options: AdamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  ) {
    this.starts = [];
    let total = 0;
    for (const p of params) {
      this.starts.push(total);
      total += p.size;
    }
    this.total = total;
    // The constants as float64s, then the squared norm's accumulator.
    const constantFloats = 2 * (ADAM_CONSTANTS.length + 1);
    this.arena = new SimdArena(arenaFloats([total, total, total, total, constantFloats]));
    [this.p, this.g, this.m, this.v, this.constants] = [total, total, total, total, constantFloats].map((n) =>
      this.arena.alloc(n),
    );
  }

  /**
   * One update with gradients aligned to `params`, after scaling them so that their global L2 norm is at
   * most `maxGradNorm` (PyTorch's clip_grad_norm_). Returns the norm before clipping. Does not dispose the
   * gradients.
   */
  async apply(grads: TF.Tensor[], lr: number, maxGradNorm = Number.POSITIVE_INFINITY): Promise<number> {
    const current = this.params.every((param, i) => param.dataId === this.written[i]);
    if (isCpuBackend(this.tf)) {
      // Host memory already: straight into the buffers.
      this.params.forEach((param, i) => {
        if (grads[i].size !== param.size)
          throw new Error(`Adam: tensor ${i} (${param.name}) should have ${param.size} values`);
        readInto(this.tf, grads[i], this.g.view, this.starts[i]);
        if (!current) readInto(this.tf, param, this.p.view, this.starts[i]);
      });
    } else {
      const [gradData, paramData] = await Promise.all([
        Promise.all(grads.map((g) => g.data() as Promise<Float32Array>)),
        current ? undefined : Promise.all(this.params.map((p) => p.data() as Promise<Float32Array>)),
      ]);
      this.load(paramData, gradData);
    }
    const norm = this.update(lr, maxGradNorm);
    this.params.forEach((param, i) => {
      const value = this.tf.tensor(tensorValues(this.tf, this.tensorView(this.p, i)), param.shape);
      param.assign(value);
      value.dispose();
      this.written[i] = param.dataId;
    });
    return norm;
  }

  /**
   * The same update on host copies of the parameters (aligned to `params`), in place: the host PPO path
   * keeps the weights on the host for a whole batch and writes the variables once. Returns the norm.
   */
  applyHost(
    params: Float32Array[],
    grads: ArrayLike<number>[],
    lr: number,
    maxGradNorm = Number.POSITIVE_INFINITY,
  ): number {
    this.written.length = 0; // p now holds these copies, not what the variables hold
    this.load(params, grads);
    const norm = this.update(lr, maxGradNorm);
    params.forEach((p, i) => {
      p.set(this.tensorView(this.p, i));
    });
    return norm;
  }

  /** Gradients (and parameters, unless `p` holds them already) into the end-to-end buffers. */
  private load(params: ArrayLike<number>[] | undefined, grads: ArrayLike<number>[]): void {
    for (let i = 0; i < this.params.length; i++) {
      const size = this.params[i].size;
      if ((params && params[i].length !== size) || grads[i].length !== size)
        throw new Error(`Adam: tensor ${i} (${this.params[i].name}) should have ${size} values`);
      if (params) this.p.view.set(params[i], this.starts[i]);
      this.g.view.set(grads[i], this.starts[i]);
    }
  }

  /** Norm, clipping scale and the kernel's update of every tensor at once (wasm-adam.ts). */
  private update(lr: number, maxGradNorm: number): number {
    const { beta1, beta2, epsilon } = this.options;
    const k = this.arena.kernels;
    const constants = new Float64Array(
      this.constants.view.buffer,
      this.constants.offset,
      ADAM_CONSTANTS.length + 1,
    );
    const accumulator = ADAM_CONSTANTS.length;
    // The squared norm summed tensor after tensor, element by element, as the update's definition reads.
    constants[accumulator] = 0;
    for (let i = 0; i < this.params.length; i++)
      k.sumSquares(
        this.g.offset + 4 * this.starts[i],
        this.params[i].size,
        this.constants.offset + 8 * accumulator,
      );
    const norm = Math.sqrt(constants[accumulator]);
    const scale = Number.isFinite(maxGradNorm) ? Math.min(1, maxGradNorm / (norm + 1e-6)) : 1;
    this.step += 1;
    const values: Record<(typeof ADAM_CONSTANTS)[number], number> = {
      scale,
      beta1,
      oneMinusBeta1: 1 - beta1,
      beta2,
      oneMinusBeta2: 1 - beta2,
      stepSize: lr / (1 - beta1 ** this.step),
      correction2: Math.sqrt(1 - beta2 ** this.step),
      epsilon,
    };
    ADAM_CONSTANTS.forEach((name, i) => {
      constants[i] = values[name];
    });
    k.adam(this.p.offset, this.g.offset, this.m.offset, this.v.offset, this.total, this.constants.offset);
    return norm;
  }

  private tensorView(buffer: SimdBuffer, i: number): Float32Array {
    return buffer.view.subarray(this.starts[i], this.starts[i] + this.params[i].size);
  }

  saveArrays(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    this.params.forEach((_, i) => {
      out[`m${i}`] = this.tensorView(this.m, i).slice();
      out[`v${i}`] = this.tensorView(this.v, i).slice();
    });
    return out;
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, step: number): void {
    const put = (buffer: SimdBuffer, i: number, name: string) => {
      const target = this.tensorView(buffer, i);
      const a = arrays[name];
      if (!a || a.length !== target.length)
        throw new Error(`optimizer state ${name}: expected ${target.length} values`);
      target.set(a);
    };
    this.params.forEach((_, i) => {
      put(this.m, i, `m${i}`);
      put(this.v, i, `v${i}`);
    });
    this.step = step;
  }

  dispose(): void {
    // Host memory only: nothing to free.
  }
}
