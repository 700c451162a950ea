/**
 * Adam's WebAssembly kernels (wasm-adam.ts) against the update written out in JavaScript float64 (the
 * rule in adam.ts; this was its implementation): the same bits, step after step, with and without
 * clipping, over tensors whose sizes leave odd tails.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Adam } from '../../src-main/engine/nn/adam.ts';

/** The reference: Adam with global-norm clipping, in float64 over float32 storage. */
class ReferenceAdam {
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  step = 0;
  constructor(
    sizes: number[],
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly epsilon: number,
  ) {
    this.m = sizes.map((n) => new Float32Array(n));
    this.v = sizes.map((n) => new Float32Array(n));
  }
  apply(params: Float32Array[], grads: Float32Array[], lr: number, maxGradNorm: number): number {
    const { beta1, beta2, epsilon } = this;
    // Per tensor: four chains (k mod 4) added in order, then the tail; the tensors' sums in order.
    let squares = 0;
    for (const g of grads) {
      const chains = [0, 0, 0, 0];
      const quads = g.length - (g.length % 4);
      for (let k = 0; k < quads; k++) chains[k % 4] += g[k] * g[k];
      let sum = chains[0] + chains[1] + chains[2] + chains[3];
      for (let k = quads; k < g.length; k++) sum += g[k] * g[k];
      squares += sum;
    }
    const norm = Math.sqrt(squares);
    const scale = Number.isFinite(maxGradNorm) ? Math.min(1, maxGradNorm / (norm + 1e-6)) : 1;
    this.step += 1;
    const stepSize = lr / (1 - beta1 ** this.step);
    const correction2 = Math.sqrt(1 - beta2 ** this.step);
    params.forEach((p, i) => {
      const [g, m, v] = [grads[i], this.m[i], this.v[i]];
      for (let k = 0; k < p.length; k++) {
        const gk = g[k] * scale;
        m[k] = beta1 * m[k] + (1 - beta1) * gk;
        v[k] = beta2 * v[k] + (1 - beta2) * gk * gk;
        p[k] -= (stepSize * m[k]) / (Math.sqrt(v[k]) / correction2 + epsilon);
      }
    });
    return norm;
  }
}

describe('Adam kernels', () => {
  it('give the float64 JavaScript update bit for bit, step after step, clipped or not (odd sizes)', () => {
    const shapes = [[3, 5], [7], [1], [4, 4]];
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const variables = shapes.map((s) => tf.variable(tf.zeros(s)));
    const adam = new Adam(tf, variables, { beta1: 0.9, beta2: 0.98, epsilon: 1e-6 });
    const reference = new ReferenceAdam(sizes, 0.9, 0.98, 1e-6);
    const start = sizes.map((n, i) => Float32Array.from({ length: n }, (_, k) => Math.sin(k + 3 * i)));
    const [ours, theirs] = [start.map((p) => p.slice()), start.map((p) => p.slice())];
    for (let step = 0; step < 6; step++) {
      const grads = sizes.map((n, i) =>
        Float32Array.from({ length: n }, (_, k) => Math.cos(k * 0.7 + i + step) * 3),
      );
      // Clipped on even steps (the norm is ~10), not on odd ones.
      const clip = step % 2 === 0 ? 1 : Number.POSITIVE_INFINITY;
      const norm = adam.applyHost(ours, grads, 0.01, clip);
      expect(norm).toBe(reference.apply(theirs, grads, 0.01, clip));
      ours.forEach((p, i) => {
        expect(Array.from(p)).toEqual(Array.from(theirs[i]));
      });
    }
    // The moments as saved for a checkpoint are the reference's.
    const saved = adam.saveArrays();
    sizes.forEach((_, i) => {
      expect(Array.from(saved[`m${i}`])).toEqual(Array.from(reference.m[i]));
      expect(Array.from(saved[`v${i}`])).toEqual(Array.from(reference.v[i]));
    });
    expect(ours[0]).not.toEqual(start[0]);
    tf.dispose(variables);
  });

  it('apply() updates the variables with the same numbers as applyHost', async () => {
    const variables = [
      tf.variable(tf.tensor1d([0.5, -1, 2])),
      tf.variable(
        tf.tensor2d([
          [1, 2],
          [3, 4],
        ]),
      ),
    ];
    const host = [Float32Array.of(0.5, -1, 2), Float32Array.of(1, 2, 3, 4)];
    const grads = [
      tf.tensor1d([0.1, 0.2, -0.3]),
      tf.tensor2d([
        [1, -1],
        [0.5, 2],
      ]),
    ];
    const a = new Adam(tf, variables);
    const b = new Adam(
      tf,
      variables.map((v) => tf.variable(v.clone())),
    );
    for (let i = 0; i < 3; i++) {
      await a.apply(grads, 0.1, 1);
      b.applyHost(
        host,
        grads.map((g) => g.dataSync() as Float32Array),
        0.1,
        1,
      );
    }
    expect(Array.from(variables[0].dataSync())).toEqual(Array.from(host[0]));
    expect(Array.from(variables[1].dataSync())).toEqual(Array.from(host[1]));
    tf.dispose([...variables, ...grads]);
  });

  it('apply() reads a variable again once something else assigned it (a restored checkpoint)', async () => {
    const variable = tf.variable(tf.tensor1d([1, 2, 3]));
    const grad = tf.tensor1d([0.5, -0.5, 1]);
    const adam = new Adam(tf, [variable]);
    const host = new Adam(tf, [tf.variable(tf.zeros([3]))]);
    const copy = Float32Array.of(1, 2, 3);
    await adam.apply([grad], 0.1);
    host.applyHost([copy], [grad.dataSync() as Float32Array], 0.1);
    // Both restart from other values: apply() must not update its own stale copy of the old ones.
    variable.assign(tf.tensor1d([10, 20, 30]));
    copy.set([10, 20, 30]);
    await adam.apply([grad], 0.1);
    host.applyHost([copy], [grad.dataSync() as Float32Array], 0.1);
    expect(Array.from(variable.dataSync())).toEqual(Array.from(copy));
    expect(variable.dataSync()[0]).toBeGreaterThan(9);
    tf.dispose([variable, grad]);
  });
});
