/**
 * world.ensemble: learns known linear dynamics, grows its disagreement off the data, imagined episodes
 * end at the horizon / cut-off / predicted termination, tensors are freed, and the node's state
 * round-trips through save/load.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { VectorEnv, VectorTrajectories } from '../../nodes/contracts.ts';
import worldEnsemble, { DynamicsEnsemble } from '../../nodes/world/ensemble.ts';
import { type ImaginationModel, ImaginedVectorEnv, TransitionBuffer } from '../../nodes/world/imagination.ts';
import worldLatent from '../../nodes/world/latent.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { NodeContext, NodeInstance, Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';

let tf: Tf;
beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
});

// s' = A s + b_a, r = s_0 + s_1, never terminates; 2-d states, 2 actions.
const A = [
  [0.9, 0.2],
  [-0.1, 0.8],
];
const B = [
  [0.1, 0],
  [-0.1, 0.05],
];
const linearStep = (s: number[], a: number): number[] => [
  A[0][0] * s[0] + A[0][1] * s[1] + B[a][0],
  A[1][0] * s[0] + A[1][1] * s[1] + B[a][1],
];

/** A one-step-per-episode batch of random transitions of the linear system, states in [-1, 1]. */
function linearBatch(count: number, rng: Rng): VectorTrajectories {
  const observations = new Float32Array(count * 2);
  const finalObservations = new Float32Array(count * 2);
  const actions = new Int32Array(count);
  const rewards = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const s = [rng.uniform(-1, 1), rng.uniform(-1, 1)];
    const a = rng.int(2);
    observations.set(s, i * 2);
    finalObservations.set(linearStep(s, a), i * 2);
    actions[i] = a;
    rewards[i] = s[0] + s[1];
  }
  // One step of `count` copies, each ending by truncation so that s' is the final observation.
  return {
    kind: 'vector',
    numEnvs: count,
    numSteps: 1,
    observationSize: 2,
    numActions: 2,
    observations,
    actions,
    logProbs: new Float32Array(count),
    rewards,
    values: new Float32Array(count),
    terminated: new Uint8Array(count),
    truncated: new Uint8Array(count).fill(1),
    truncationValues: new Float32Array(count),
    lastValues: new Float32Array(count),
    finalObservations,
    lastObservations: new Float32Array(count * 2),
  };
}

const options = { members: 5, hidden: [32, 32], activation: 'relu' as const, lr: 3e-3, batchSize: 64 };

function predictOne(model: DynamicsEnsemble, s: number[], a: number) {
  const out = {
    nextStates: new Float32Array(2),
    rewards: new Float32Array(1),
    doneProbs: new Float32Array(1),
    disagreement: new Float32Array(1),
  };
  model.predict(Float32Array.from(s), Int32Array.of(a), 1, out);
  return {
    next: [...out.nextStates],
    reward: out.rewards[0],
    done: out.doneProbs[0],
    u: out.disagreement[0],
  };
}

describe('DynamicsEnsemble on known linear dynamics', () => {
  let model: DynamicsEnsemble;
  let buffer: TransitionBuffer;

  beforeAll(async () => {
    const rng = new Rng(7);
    model = new DynamicsEnsemble(tf, 2, 2, options, rng, 'world');
    buffer = new TransitionBuffer(4000, 2);
    buffer.addBatch(linearBatch(2000, rng));
    model.fitNormalisers(buffer);
    await model.train(buffer, 300, rng);
  }, 60_000);

  it('predicts next state, reward and no termination within tolerance on held-out states', () => {
    const rng = new Rng(99);
    let worstState = 0;
    let worstReward = 0;
    let maxDone = 0;
    for (let i = 0; i < 50; i++) {
      const s = [rng.uniform(-0.9, 0.9), rng.uniform(-0.9, 0.9)];
      const a = rng.int(2);
      const p = predictOne(model, s, a);
      const truth = linearStep(s, a);
      worstState = Math.max(worstState, Math.abs(p.next[0] - truth[0]), Math.abs(p.next[1] - truth[1]));
      worstReward = Math.max(worstReward, Math.abs(p.reward - (s[0] + s[1])));
      maxDone = Math.max(maxDone, p.done);
    }
    // States span [-1, 1]; the deltas (~0.3 std) are learned to a few hundredths.
    expect(worstState).toBeLessThan(0.05);
    expect(worstReward).toBeLessThan(0.1);
    expect(maxDone).toBeLessThan(0.05);
  });

  it('disagrees more far from the data than on it', () => {
    const inside = predictOne(model, [0.3, -0.2], 0).u;
    const outside = predictOne(model, [8, -8], 0).u;
    expect(outside).toBeGreaterThan(5 * inside);
  });

  it('keeps tf.memory().numTensors flat across training rounds', async () => {
    const rng = new Rng(3);
    await model.train(buffer, 2, rng);
    const before = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) await model.train(buffer, 2, rng);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** A hand-made model: s' = s + 1 per step, reward 2, termination once s reaches `doneAt`, u = s / 10. */
class CountingModel implements ImaginationModel {
  readonly stateSize = 1;
  constructor(private readonly doneAt: number) {}
  encode(observations: Float32Array, count: number, states: Float32Array): void {
    states.set(observations.subarray(0, count));
  }
  decode(states: Float32Array, count: number, observations: Float32Array): void {
    observations.set(states.subarray(0, count));
  }
  predict(
    states: Float32Array,
    _actions: Int32Array,
    count: number,
    out: {
      nextStates: Float32Array;
      rewards: Float32Array;
      doneProbs: Float32Array;
      disagreement: Float32Array;
    },
  ): void {
    for (let e = 0; e < count; e++) {
      out.nextStates[e] = states[e] + 1;
      out.rewards[e] = 2;
      out.doneProbs[e] = states[e] + 1 >= this.doneAt ? 0.9 : 0.1;
      out.disagreement[e] = (states[e] + 1) / 10;
    }
  }
}

function zeroStartBuffer(): TransitionBuffer {
  const buffer = new TransitionBuffer(4, 1);
  buffer.size = 1; // one real state, s = 0
  return buffer;
}

function runEpisode(env: ImaginedVectorEnv): {
  steps: number;
  terminated: number;
  truncated: number;
  final: number;
} {
  const actions = new Int32Array(1);
  for (let t = 1; t <= 100; t++) {
    const r = env.step(actions);
    expect(r.rewards[0]).toBe(2);
    if (r.terminated[0] || r.truncated[0]) {
      return {
        steps: t,
        terminated: r.terminated[0],
        truncated: r.truncated[0],
        final: r.finalObservations[0],
      };
    }
  }
  throw new Error('episode did not end');
}

describe('ImaginedVectorEnv episode ends', () => {
  const make = (doneAt: number, horizon: number, cutoff: number) =>
    new ImaginedVectorEnv(
      'world',
      1,
      2,
      new CountingModel(doneAt),
      zeroStartBuffer(),
      { numEnvs: 1, horizon, uncertaintyCutoff: cutoff, terminationThreshold: 0.5 },
      new Rng(1),
    );

  it('truncates at the horizon and restarts from a real state', () => {
    const env = make(1000, 5, 1000);
    expect(runEpisode(env)).toEqual({ steps: 5, terminated: 0, truncated: 1, final: 5 });
    expect(env.observations()[0]).toBe(0);
    expect(runEpisode(env).steps).toBe(5);
    expect(env.takeCounters()).toMatchObject({ steps: 10, episodes: 2, horizonCuts: 2, uncertaintyCuts: 0 });
  });

  it('truncates when the disagreement passes the cut-off', () => {
    // u after step t is t / 10: 0.35 is first passed at t = 4.
    const env = make(1000, 50, 0.35);
    expect(runEpisode(env)).toEqual({ steps: 4, terminated: 0, truncated: 1, final: 4 });
    expect(env.takeCounters()).toMatchObject({ uncertaintyCuts: 1, horizonCuts: 0, terminations: 0 });
  });

  it('terminates where the model predicts termination', () => {
    const env = make(3, 50, 1000);
    expect(runEpisode(env)).toEqual({ steps: 3, terminated: 1, truncated: 0, final: 3 });
  });

  it('refuses to imagine before any real transition was seen', () => {
    const env = new ImaginedVectorEnv(
      'world',
      1,
      2,
      new CountingModel(3),
      new TransitionBuffer(4, 1),
      { numEnvs: 1, horizon: 5, uncertaintyCutoff: 1, terminationThreshold: 0.5 },
      new Rng(1),
    );
    expect(() => env.observations()).toThrow(/world\.env: the world model has no real transitions yet/);
  });
});

// Both world-model nodes share their node code (world-node.ts); the latent one also carries imagined
// copies that are mid-episode over to its new latents after each training round.
describe.each([
  [
    'world.ensemble',
    worldEnsemble,
    worldEnsemble.params.parse({
      members: 3,
      hidden: [16],
      trainSteps: 5,
      batchSize: 16,
      imaginedEnvs: 2,
      horizon: 4,
    }),
  ],
  [
    'world.latent',
    worldLatent,
    worldLatent.params.parse({
      latentSize: 4,
      hidden: 16,
      transitionHeads: 2,
      trainSteps: 5,
      batchSize: 16,
      imaginedEnvs: 2,
      horizon: 4,
    }),
  ],
] as const)('%s node state', (_type, node, params) => {
  const realEnv = { nodeId: 'env', numEnvs: 1, observationSize: 2, numActions: 2 } as VectorEnv;
  const context = (rng: Rng): NodeContext => ({
    nodeId: 'world',
    label: 'world',
    tf,
    rng,
    inputs: { env: realEnv },
    run: { seed: 1, totalIterations: 10, backend: 'wasm' },
    control: { point: async () => {} },
    log: () => {},
  });
  const imaginedOf = (node: NodeInstance) => node.components?.imagined as ImaginedVectorEnv;

  it('round-trips weights, optimiser, buffer and imagination through save/load', async () => {
    const rngA = new Rng(11);
    const a = await node.create(params as never, context(rngA));
    const data = new Rng(5);
    await a.step!({ trajectories: linearBatch(64, data) }, { iteration: 0, totalIterations: 10 });
    imaginedOf(a).step(Int32Array.of(0, 1));
    const saved = await a.saveState!();

    const rngB = new Rng(999);
    const b = await node.create(params as never, context(rngB));
    await b.loadState!(structuredClone(saved));
    rngB.setState(rngA.state());

    const next = linearBatch(64, data);
    const stepA = await a.step!({ trajectories: next }, { iteration: 1, totalIterations: 10 });
    const stepB = await b.step!({ trajectories: next }, { iteration: 1, totalIterations: 10 });
    expect(stepB.metrics).toEqual(stepA.metrics);
    expect(stepA.metrics?.buffer_size).toBe(128);
    const actions = Int32Array.of(1, 0);
    const ra = imaginedOf(a).step(actions);
    const obsA = Float32Array.from(imaginedOf(a).observations());
    const rb = imaginedOf(b).step(actions);
    expect([...rb.rewards]).toEqual([...ra.rewards]);
    expect([...imaginedOf(b).observations()]).toEqual([...obsA]);
    a.dispose?.();
    b.dispose?.();
  });
});
