/**
 * Adam (Kingma & Ba 2015) with PyTorch's update rule and global gradient-norm clipping, owned by the
 * trainer so that its moments are saved in checkpoints and the learning rate can be annealed per iteration.
 *   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * The update runs on the host over typed arrays: for the small networks trained here it replaces about
 * eight tensor ops per parameter tensor (each with fixed per-op overhead) with one read and one write.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../node-api.ts';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
}

export class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  step = 0;

  constructor(
    private readonly tf: Tf,
    private readonly params: TF.Variable[],
    private readonly options: AdamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  ) {
    this.m = params.map((p) => new Float32Array(p.size));
    this.v = params.map((p) => new Float32Array(p.size));
  }

  /**
   * One update with gradients aligned to `params`, after scaling them so that their global L2 norm is at
   * most `maxGradNorm` (PyTorch's clip_grad_norm_). Returns the norm before clipping. Does not dispose the
   * gradients.
   */
  async apply(grads: TF.Tensor[], lr: number, maxGradNorm = Number.POSITIVE_INFINITY): Promise<number> {
    const [gradData, paramData] = await Promise.all([
      Promise.all(grads.map((g) => g.data() as Promise<Float32Array>)),
      Promise.all(this.params.map((p) => p.data() as Promise<Float32Array>)),
    ]);
    const updated = paramData.map((a) => Float32Array.from(a));
    const norm = this.applyHost(updated, gradData, lr, maxGradNorm);
    this.params.forEach((param, i) => {
      const value = this.tf.tensor(updated[i], param.shape);
      param.assign(value);
      value.dispose();
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
    const { beta1, beta2, epsilon } = this.options;
    let squares = 0;
    for (const g of grads) for (let k = 0; k < g.length; k++) squares += g[k] * g[k];
    const norm = Math.sqrt(squares);
    const scale = Number.isFinite(maxGradNorm) ? Math.min(1, maxGradNorm / (norm + 1e-6)) : 1;
    this.step += 1;
    const stepSize = lr / (1 - beta1 ** this.step);
    const correction2 = Math.sqrt(1 - beta2 ** this.step);
    for (let i = 0; i < params.length; i++) {
      adamStep(
        params[i],
        grads[i],
        this.m[i],
        this.v[i],
        scale,
        beta1,
        beta2,
        stepSize,
        correction2,
        epsilon,
      );
    }
    return norm;
  }

  saveArrays(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    this.m.forEach((m, i) => {
      out[`m${i}`] = m.slice();
      out[`v${i}`] = this.v[i].slice();
    });
    return out;
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, step: number): void {
    const put = (target: Float32Array, name: string) => {
      const a = arrays[name];
      if (!a || a.length !== target.length)
        throw new Error(`optimizer state ${name}: expected ${target.length} values`);
      target.set(a);
    };
    this.m.forEach((m, i) => {
      put(m, `m${i}`);
    });
    this.v.forEach((v, i) => {
      put(v, `v${i}`);
    });
    this.step = step;
  }

  dispose(): void {
    // Host arrays only: nothing to free.
  }
}

/** One tensor's Adam step, in place (a plain function over typed arrays, so V8 keeps it monomorphic). */
function adamStep(
  updated: Float32Array,
  g: ArrayLike<number>,
  m: Float32Array,
  v: Float32Array,
  scale: number,
  beta1: number,
  beta2: number,
  stepSize: number,
  correction2: number,
  epsilon: number,
): void {
  for (let k = 0; k < updated.length; k++) {
    const gk = g[k] * scale;
    m[k] = beta1 * m[k] + (1 - beta1) * gk;
    v[k] = beta2 * v[k] + (1 - beta2) * gk * gk;
    updated[k] -= (stepSize * m[k]) / (Math.sqrt(v[k]) / correction2 + epsilon);
  }
}
