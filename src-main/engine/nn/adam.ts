/**
 * Adam (Kingma & Ba 2015) with PyTorch's update rule, owned by the trainer so that its moments are
 * saved in checkpoints and the learning rate can be annealed per iteration.
 *   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../node-api.ts';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
}

export class Adam {
  private m: TF.Variable[];
  private v: TF.Variable[];
  step = 0;

  constructor(
    private readonly tf: Tf,
    private readonly params: TF.Variable[],
    private readonly options: AdamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  ) {
    const zeros = (p: TF.Variable) => {
      const z = tf.zerosLike(p);
      const variable = tf.variable(z, false);
      z.dispose();
      return variable;
    };
    this.m = params.map(zeros);
    this.v = params.map(zeros);
  }

  /** Apply one update with gradients aligned to `params`. Does not dispose the gradients. */
  apply(grads: TF.Tensor[], lr: number): void {
    const tf = this.tf;
    const { beta1, beta2, epsilon } = this.options;
    this.step += 1;
    const stepSize = lr / (1 - beta1 ** this.step);
    const correction2 = Math.sqrt(1 - beta2 ** this.step);
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const denom = tf.add(tf.div(tf.sqrt(v), correction2), epsilon);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
      });
    });
  }

  async saveArrays(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    const all = await Promise.all([...this.m, ...this.v].map((t) => t.data() as Promise<Float32Array>));
    this.m.forEach((_, i) => {
      out[`m${i}`] = Float32Array.from(all[i]);
      out[`v${i}`] = Float32Array.from(all[this.m.length + i]);
    });
    return out;
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, step: number): void {
    const tf = this.tf;
    const put = (target: TF.Variable, name: string) => {
      const a = arrays[name];
      if (!a || a.length !== target.size)
        throw new Error(`optimizer state ${name}: expected ${target.size} values`);
      const value = tf.tensor(Float32Array.from(a), target.shape);
      target.assign(value);
      value.dispose();
    };
    this.m.forEach((t, i) => {
      put(t, `m${i}`);
    });
    this.v.forEach((t, i) => {
      put(t, `v${i}`);
    });
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
