import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DiscretePolicy, VectorTrajectories } from '../../nodes/contracts.ts';
import hcaReturnNode, {
  hcaReturnAdvantages,
  returnFeatures,
  returnRms,
} from '../../nodes/credit/hca-return.ts';
import { completeSteps, keepRows } from '../../nodes/credit/hindsight-classifier.ts';
import { Rng } from '../../src-main/engine/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Two env copies, three steps; copy 0 ends at t = 1, copy 1 at t = 2. */
function batch(): VectorTrajectories {
  const n = 2;
  const steps = 3;
  return {
    kind: 'vector',
    numEnvs: n,
    numSteps: steps,
    observationSize: 2,
    numActions: 2,
    observations: Float32Array.from([1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1]),
    actions: Int32Array.from([0, 1, 1, 0, 0, 1]),
    logProbs: new Float32Array(steps * n).fill(Math.log(0.5)),
    rewards: Float32Array.from([0, 0, 1, 0, 2, -1]),
    values: new Float32Array(steps * n),
    terminated: Uint8Array.from([0, 0, 1, 0, 0, 1]),
    truncated: new Uint8Array(steps * n),
    truncationValues: new Float32Array(steps * n),
    lastValues: new Float32Array(n),
  };
}

describe('return-conditioned HCA formulas', () => {
  it('A = (1 - pi/h) Z, with h clamped at the floor', () => {
    const logProbs = Float32Array.from([Math.log(0.5), Math.log(0.5), Math.log(0.2), Math.log(0.5)]);
    const hindsight = Float32Array.from([0.8, 0.25, 0.4, 0.01]);
    const returns = Float32Array.from([2, 2, -1, 3]);
    const a = hcaReturnAdvantages(logProbs, hindsight, returns, 0.05);
    // (1 - 0.5/0.8) 2 = 0.75; (1 - 2) 2 = -2; (1 - 0.5)(-1) = -0.5; h -> 0.05: (1 - 10) 3 = -27
    expect(Array.from(a).map((x) => Number(x.toFixed(5)))).toEqual([0.75, -2, -0.5, -27]);
  });

  it('h = pi gives no credit at all', () => {
    const logProbs = Float32Array.from([Math.log(0.3), Math.log(0.9)]);
    const a = hcaReturnAdvantages(logProbs, Float32Array.from([0.3, 0.9]), Float32Array.from([5, -4]), 0.05);
    expect(Math.abs(a[0])).toBeLessThan(1e-6);
    expect(Math.abs(a[1])).toBeLessThan(1e-6);
  });

  it('features are [x, x Z / scale, Z / scale]; the cut-off tail is marked incomplete', () => {
    const b = batch();
    const returns = Float32Array.from([1, -1, 1, -1, -1, -1]);
    expect(returnRms(returns)).toBe(1);
    const f = returnFeatures(b, returns, 2);
    // [x, x z, z] with z = Z / 2
    expect(Array.from(f.subarray(0, 10), (x) => x + 0)).toEqual([1, 0, 0.5, 0, 0.5, 1, 0, -0.5, 0, -0.5]);
    // copy 0 terminates at t = 1 (index 2) only -> its t = 2 step (index 4) is cut off
    expect(Array.from(completeSteps(b))).toEqual([1, 1, 1, 1, 0, 1]);
    expect(Array.from(keepRows(Int32Array.from([7, 8, 9]), 1, Uint8Array.from([1, 0, 1])))).toEqual([7, 9]);
  });
});

describe('credit.hca-return node', () => {
  it('trains its classifier without leaking tensors, and checkpoints it', async () => {
    const logits = (obs: tf.Tensor2D) => tf.zeros([obs.shape[0], 2]) as tf.Tensor2D;
    const policy = {
      nodeId: 'policy',
      observationSize: 2,
      numActions: 2,
      logits,
    } as unknown as DiscretePolicy;
    const ctx = {
      nodeId: 'hca',
      label: 'hca',
      tf,
      rng: new Rng(3),
      inputs: { policy },
      run: { seed: 1, totalIterations: 5, backend: 'cpu' },
      control: { point: async () => {} },
      log: () => {},
    };
    const params = hcaReturnNode.params.parse({ epochs: 2, minibatchSize: 4 });
    const node = await hcaReturnNode.create(params, ctx);
    const counts: number[] = [];
    for (let iteration = 0; iteration < 4; iteration++) {
      const out = await node.step!({ trajectories: batch() }, { iteration, totalIterations: 4 });
      const metrics = out.metrics!;
      expect(Number.isFinite(metrics.classifier_loss)).toBe(true);
      expect(out.samples?.length).toBe(2);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    const saved = await node.saveState!();
    expect(Object.keys(saved.arrays ?? {}).some((k) => k.startsWith('h_'))).toBe(true);
    expect(Object.keys(saved.arrays ?? {}).some((k) => k.startsWith('adam_m'))).toBe(true);
    node.dispose?.();
  });
});
