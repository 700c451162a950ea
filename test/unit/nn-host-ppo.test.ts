import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ppoLoss } from '../../nodes/trainer/ppo.ts';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { HostMlpPass, ppoLossHost } from '../../src-main/engine/nn/host-ppo.ts';
import { type Activation, Mlp } from '../../src-main/engine/nn/mlp.ts';
import { Rng } from '../../src-main/engine/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1e-4 + Math.abs(b[i])));
  }
  return worst;
}

/** One PPO minibatch through the tensor path and the host path; returns both gradients and stats. */
async function compare(activation: Activation, clipValueLoss: boolean, n: number) {
  const rng = new Rng(7);
  const actor = new Mlp(
    tf,
    { sizes: [4, 16, 16, 3], activation, gains: [Math.SQRT2, Math.SQRT2, 1] },
    rng,
    'a',
  );
  const critic = new Mlp(
    tf,
    { sizes: [4, 16, 16, 1], activation, gains: [Math.SQRT2, Math.SQRT2, 1] },
    rng,
    'c',
  );
  const obs = Float32Array.from({ length: n * 4 }, () => rng.normal());
  const actions = Int32Array.from({ length: n }, () => rng.int(3));
  // Old log-probs spread so that ratios fall inside and outside [0.8, 1.2] (both branches of the clip).
  const oldLogProbs = Float32Array.from({ length: n }, () => Math.log(1 / 3) + 0.5 * rng.normal());
  const advantages = Float32Array.from({ length: n }, () => rng.normal());
  const returns = Float32Array.from({ length: n }, () => rng.normal());
  const oldValues = Float32Array.from({ length: n }, () => 0.4 * rng.normal());
  const options = { clip: 0.2, clipValueLoss, entropyCoef: 0.01, valueCoef: 0.5 };
  const variables = [...actor.variables, ...critic.variables];

  const { grads, stats: tensorStats } = tf.tidy(() => {
    const x = tf.tensor2d(obs, [n, 4]);
    let kept: tf.Tensor | undefined;
    const result = tf.variableGrads(() => {
      const parts = ppoLoss(
        tf,
        {
          logits: actor.apply(x),
          values: critic.apply(x).reshape([-1]) as tf.Tensor1D,
          actions: tf.tensor1d(actions, 'int32'),
          oldLogProbs: tf.tensor1d(oldLogProbs),
          advantages: tf.tensor1d(advantages),
          oldValues: tf.tensor1d(oldValues),
          returns: tf.tensor1d(returns),
        },
        options,
      );
      kept = tf.keep(tf.stack(parts.slice(1)));
      return parts[0];
    }, variables);
    return {
      grads: variables.map((v) => result.grads[v.name].dataSync().slice()),
      stats: kept!,
    };
  });
  const stats = tensorStats.dataSync().slice();
  tensorStats.dispose();

  const actorParams = await actor.readParams();
  const criticParams = await critic.readParams();
  const actorPass = new HostMlpPass(actor.spec.sizes, activation, n);
  const criticPass = new HostMlpPass(critic.spec.sizes, activation, n);
  actorPass.loadParams(actorParams);
  criticPass.loadParams(criticParams);
  const logits = actorPass.forward(obs, n);
  const values = criticPass.forward(obs, n);
  const hostStats = ppoLossHost(
    logits,
    3,
    values,
    { count: n, actions, oldLogProbs, advantages, oldValues, returns },
    options,
    actorPass.outputGradient(),
    criticPass.outputGradient(),
  );
  actorPass.backward(n);
  criticPass.backward(n);
  const hostGrads = [...actorPass.grads, ...criticPass.grads];
  actor.dispose();
  critic.dispose();
  return { grads, stats, hostGrads, hostStats };
}

describe('host PPO update (small MLPs) vs the TensorFlow.js path', () => {
  // 97 rows: not a multiple of the kernel's 4-row block, so the remainder path runs too.
  for (const [activation, clipValueLoss, n] of [
    ['tanh', true, 96],
    ['relu', false, 97],
  ] as const) {
    it(`gives the same loss terms and gradients (${activation}, value clip ${clipValueLoss}, ${n} rows)`, async () => {
      const before = tf.memory().numTensors;
      const { grads, stats, hostGrads, hostStats } = await compare(activation, clipValueLoss, n);
      expect(tf.memory().numTensors).toBe(before);
      // The batch really exercises the clip: some rows clipped, some not.
      expect(hostStats[4]).toBeGreaterThan(0.1);
      expect(hostStats[4]).toBeLessThan(0.9);
      expect(maxRelativeError(hostStats, stats)).toBeLessThan(1e-4);
      expect(grads.length).toBe(hostGrads.length);
      grads.forEach((g, i) => {
        expect(hostGrads[i].length).toBe(g.length);
        // float32 both ways, summed in different orders: relative 1e-3 with an absolute floor of 1e-7.
        let worst = 0;
        for (let k = 0; k < g.length; k++) {
          worst = Math.max(worst, Math.abs(hostGrads[i][k] - g[k]) / (1e-4 + Math.abs(g[k])));
        }
        expect(worst, `parameter ${i}`).toBeLessThan(1e-3);
      });
      // Non-trivial gradients everywhere (a zero gradient would agree trivially).
      for (const g of hostGrads) expect(g.some((v) => Math.abs(v) > 1e-6)).toBe(true);
    });
  }

  it('Mlp host forward pass agrees with the tensor forward pass', () => {
    const rng = new Rng(3);
    const net = new Mlp(tf, { sizes: [5, 32, 32, 3], activation: 'tanh', gains: [1, 1, 1] }, rng, 'n');
    const rows = 7;
    const x = Float32Array.from({ length: rows * 5 }, () => rng.normal());
    const host = new Float32Array(rows * 3);
    net.forwardHost(x, rows, host);
    const expected = tf.tidy(() =>
      net
        .apply(tf.tensor2d(x, [rows, 5]))
        .dataSync()
        .slice(),
    );
    expect(maxRelativeError(host, expected)).toBeLessThan(1e-4);
    // One row at an offset, as the world models call it.
    const one = new Float32Array(3);
    net.forwardHost(x, 1, one, 2 * 5);
    expect(maxRelativeError(one, expected.subarray(6, 9))).toBeLessThan(1e-4);
    net.dispose();
  });

  it('matches hand-computed value-loss gradients on a two-row batch', () => {
    // values [1, 2], old [0.5, 2.5], returns [2, 1], clip 0.2: both rows take the clipped branch
    // (v_clipped = 0.7 and 2.3, errors 1.69 > 1); row 0 is clipped (delta 0.5 > 0.2): gradient 0;
    // row 1 also (delta -0.5): gradient 0. With value clip off: c_v (v - R) / n = 0.5 * [-1, 1] / 2.
    const x = {
      count: 2,
      actions: Int32Array.from([0, 1]),
      oldLogProbs: Float32Array.from([Math.log(0.4), Math.log(0.5)]),
      advantages: Float32Array.from([1, -1]),
      oldValues: Float32Array.from([0.5, 2.5]),
      returns: Float32Array.from([2, 1]),
    };
    const logits = Float64Array.from([0, 0, Math.log(3), 0]);
    const values = Float64Array.from([1, 2]);
    const dLogits = new Float64Array(4);
    const dValues = new Float64Array(2);
    const o = { clip: 0.2, clipValueLoss: true, entropyCoef: 0, valueCoef: 0.5 };
    const stats = ppoLossHost(logits, 2, values, x, o, dLogits, dValues);
    expect(stats[0]).toBeCloseTo(-0.2, 10);
    expect(stats[1]).toBeCloseTo(0.845, 10);
    expect(Array.from(dValues)).toEqual([0, 0]);
    // Row 0: ratio 1.25 > 1.2 with A = 1: clipped branch (-1.2 > -1.25), gradient 0. Row 1: ratio 0.5,
    // A = -1: clipped branch (0.8 > 0.5), gradient 0. So no policy gradient at all.
    expect(Array.from(dLogits)).toEqual([0, 0, 0, 0]);
    ppoLossHost(logits, 2, values, x, { ...o, clipValueLoss: false }, dLogits, dValues);
    expect(dValues[0]).toBeCloseTo(-0.25, 10);
    expect(dValues[1]).toBeCloseTo(0.25, 10);
  });

  it('host Adam gives the same parameters as the tensor Adam', async () => {
    const make = () => [tf.variable(tf.tensor1d([0.5, -1, 2])), tf.variable(tf.tensor1d([3]))];
    const a = make();
    const b = make();
    const adamA = new Adam(tf, a);
    const adamB = new Adam(tf, b);
    const hostParams = await Promise.all(b.map(async (v) => Float32Array.from(await v.data())));
    for (const g of [
      [Float32Array.from([0.1, -0.2, 0.3]), Float32Array.from([2])],
      [Float32Array.from([-1, 0.5, 0]), Float32Array.from([0.01])],
    ]) {
      const tensors = g.map((x) => tf.tensor1d(x));
      const normA = await adamA.apply(tensors, 0.01, 0.5);
      tf.dispose(tensors);
      const normB = adamB.applyHost(hostParams, g, 0.01, 0.5);
      expect(normB).toBe(normA);
    }
    for (let i = 0; i < a.length; i++) expect(hostParams[i]).toEqual(await a[i].data());
    tf.dispose([...a, ...b]);
  });
});
