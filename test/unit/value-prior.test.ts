import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { VectorEnv } from '../../nodes/contracts.ts';
import valuePrior, { shrinkageAdvantages } from '../../nodes/value/prior.ts';
import { Rng } from '../../src-main/engine/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('value.prior shrinkage', () => {
  // Group A (obs [1]): returns 1, 3, 5; group B (obs [2]): returns 2, 4; a lone step C (obs [3]): 7.
  const observations = Float32Array.from([1, 1, 1, 2, 2, 3]);
  const returns = Float32Array.from([1, 3, 5, 2, 4, 7]);
  const prior = Float32Array.from([2, 2, 2, 6, 6, 0]);
  const include = new Uint8Array(6).fill(1);

  it('measures sigma^2 and tau^2 from the batch as the formulas say', () => {
    const r = shrinkageAdvantages(observations, 1, returns, prior, include, null);
    // within: A: (1-3)^2 + 0 + (5-3)^2 = 8 over 2 dof, B: 1 + 1 = 2 over 1 dof -> sigma^2 = 10/3
    expect(r.batch.returnVariance).toBeCloseTo(10 / 3, 6);
    // discrepancy: A (2-3)^2 = 1, B (6-3)^2 = 9; noise sigma^2/3 + sigma^2/2 = 25/9 -> tau^2 = (10 - 25/9)/2
    expect(r.batch.priorError).toBeCloseTo((10 - 25 / 9) / 2, 6);
  });

  it('weights the prior by (sigma^2/m) / (sigma^2/m + tau^2) against the leave-one-out mean', () => {
    const stats = { returnVariance: 4, priorError: 2 };
    const r = shrinkageAdvantages(observations, 1, returns, prior, include, stats);
    // group A, m = 2: noise 2, w = 2 / (2 + 2) = 0.5; step 0: others' mean (3 + 5)/2 = 4, b = 0.5*2 + 0.5*4 = 3
    expect(r.weights[0]).toBeCloseTo(0.5, 6);
    expect(r.advantages[0]).toBeCloseTo(1 - 3, 6);
    // group B, m = 1: noise 4, w = 4/6; step 3: b = (2/3) 6 + (1/3) 4 = 16/3
    expect(r.weights[3]).toBeCloseTo(2 / 3, 6);
    expect(r.advantages[3]).toBeCloseTo(2 - 16 / 3, 5);
    // lone step: the prior alone
    expect(r.weights[5]).toBe(1);
    expect(r.advantages[5]).toBeCloseTo(7, 6);
  });

  it('a perfect prior (tau^2 = 0) takes all the weight; steps of cut-off episodes use the prior', () => {
    const cut = Uint8Array.from([1, 1, 1, 1, 0, 1]);
    const r = shrinkageAdvantages(observations, 1, returns, prior, cut, { returnVariance: 1, priorError: 0 });
    expect(r.weights[0]).toBe(1);
    expect(r.advantages[0]).toBeCloseTo(1 - 2, 6);
    expect(r.weights[4]).toBe(1);
    expect(r.advantages[4]).toBeCloseTo(4 - 6, 6);
  });
});

describe('value.prior loading', () => {
  const ctxFor = (observationSize: number) => ({
    nodeId: 'prior',
    label: 'prior',
    tf,
    rng: new Rng(1),
    inputs: { env: { observationSize, numActions: 2, numEnvs: 1 } as unknown as VectorEnv },
    run: { seed: 1, totalIterations: 1, backend: 'cpu' },
    control: { point: async () => {} },
    log: () => {},
  });

  it('loads the bundled prior and names the field when the path or the shapes are wrong', async () => {
    const ok = await valuePrior.create(valuePrior.params.parse({}), ctxFor(2));
    ok.dispose?.();
    await expect(
      valuePrior.create(valuePrior.params.parse({ checkpoint: 'no/such/run' }), ctxFor(2)),
    ).rejects.toThrow(/^prior\.checkpoint: no run or checkpoint folder/);
    await expect(valuePrior.create(valuePrior.params.parse({}), ctxFor(5))).rejects.toThrow(
      /^prior\.checkpoint: the saved weights of 'value' do not fit layer sizes 5-8-1/,
    );
    await expect(
      valuePrior.create(valuePrior.params.parse({ sourceNode: 'policy' }), ctxFor(2)),
    ).rejects.toThrow(/^prior\.sourceNode: .*value\.mlp nodes: value/);
  });
});
