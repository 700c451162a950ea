import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { DiscretePolicy, VectorTrajectories } from '../../nodes/contracts.ts';
import { CooperativeMeetEnv } from '../../nodes/environment/cooperative-meet.ts';
import { AgentRouter } from '../../nodes/rollout/multi-agent-rollout.ts';
import { PpoBatchLayout } from '../../nodes/trainer/multi-agent-ppo.ts';
import { Rng } from '../../src-main/engine/rng.ts';

const meet = (overrides: Partial<ConstructorParameters<typeof CooperativeMeetEnv>[1]> = {}) =>
  new CooperativeMeetEnv(
    'meet',
    {
      numCopies: 1,
      numAgents: 2,
      size: 5,
      horizon: 6,
      agentId: true,
      shaping: 0,
      shapingGamma: 0.99,
      ...overrides,
    },
    new Rng(7),
  );

/** Put copy 0's agents and target where the test wants them. */
function place(env: CooperativeMeetEnv, agents: Array<[number, number]>, target: [number, number]): void {
  agents.forEach(([x, y], a) => {
    env.positions[2 * a] = x;
    env.positions[2 * a + 1] = y;
  });
  env.targets.set(target);
  env.clock[0] = 0;
}

describe('env.cooperative-meet', () => {
  it('moves agents (stay, up, down, left, right), clamped to the grid', () => {
    const env = meet();
    place(
      env,
      [
        [0, 0],
        [2, 2],
      ],
      [4, 4],
    );
    env.step(new Int32Array([3, 1])); // agent 0 left (clamped), agent 1 up
    expect(Array.from(env.positions)).toEqual([0, 0, 2, 1]);
    env.step(new Int32Array([4, 2])); // right, down
    expect(Array.from(env.positions)).toEqual([1, 0, 2, 2]);
    env.step(new Int32Array([2, 0])); // down, stay
    expect(Array.from(env.positions)).toEqual([1, 1, 2, 2]);
  });

  it('each agent sees its own offset, position, time and index; the state holds everyone', () => {
    const env = meet();
    place(
      env,
      [
        [1, 2],
        [4, 0],
      ],
      [3, 3],
    );
    env.clock[0] = 3;
    const obs = Array.from(env.observations());
    // (target - p) / 4, p / 4, t / horizon, one-hot index.
    expect(obs.slice(0, 7)).toEqual([0.5, 0.25, 0.25, 0.5, 0.5, 1, 0]);
    expect(obs.slice(7, 14)).toEqual([-0.25, 0.75, 1, 0, 0.5, 0, 1]);
    expect(Array.from(env.states())).toEqual([0.25, 0.5, 1, 0, 0.75, 0.75, 0.5]);
  });

  it('pays the shared reward 1 and ends the episode only when every agent is on the target', () => {
    const env = meet();
    place(
      env,
      [
        [2, 3],
        [1, 2],
      ],
      [2, 2],
    );
    let step = env.step(new Int32Array([1, 0])); // agent 0 arrives, agent 1 still one cell away
    expect(Array.from(step.rewards)).toEqual([0, 0]);
    expect(Array.from(step.terminated)).toEqual([0, 0]);
    step = env.step(new Int32Array([0, 4])); // agent 0 waits, agent 1 arrives: they meet
    expect(Array.from(step.rewards)).toEqual([1, 1]);
    expect(Array.from(step.terminated)).toEqual([1, 1]);
    // The final observation is the meeting point (offset 0, time 2/6); the copy has been reset.
    expect(Array.from(step.finalObservations.subarray(0, 5))).toEqual([
      0,
      0,
      0.5,
      0.5,
      expect.closeTo(2 / 6, 6),
    ]);
    expect(Array.from(env.finalStates())).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, expect.closeTo(2 / 6, 6)]);
    expect(env.clock[0]).toBe(0);
    expect(env.metrics()).toEqual({ success_rate: 1, steps_to_meet: 2 });
  });

  it('ends the episode at the horizon with reward 0 (a terminal state: time is observed)', () => {
    const env = meet({ horizon: 3 });
    place(
      env,
      [
        [0, 0],
        [0, 0],
      ],
      [4, 4],
    );
    const ends: number[] = [];
    for (let t = 0; t < 3; t++) ends.push(env.step(new Int32Array([0, 0])).terminated[0]);
    expect(ends).toEqual([0, 0, 1]);
    expect(env.metrics()).toEqual({ success_rate: 0, steps_to_meet: 3 });
  });

  it('potential-based shaping telescopes to -c Phi(s_0) over an episode (gamma 1)', () => {
    const env = meet({ shaping: 2, shapingGamma: 1 });
    place(
      env,
      [
        [0, 0],
        [4, 4],
      ],
      [2, 1],
    );
    // Phi(s_0) = -(|2-0|+|1-0| + |2-4|+|1-4|) / (2 agents * 2 * 4) = -8 / 16 = -0.5
    expect(env.potential(0)).toBeCloseTo(-0.5, 6);
    // A detour first (agent 0 steps left into the wall, agent 1 down into it): shaping still sums the same.
    const path = [
      [3, 2],
      [4, 1],
      [4, 1],
      [2, 3],
      [0, 3],
      [0, 1],
    ];
    let total = 0;
    let ended = 0;
    for (const [a0, a1] of path) {
      const step = env.step(new Int32Array([a0, a1]));
      total += step.rewards[0];
      ended = step.terminated[0];
      if (ended) break;
    }
    expect(ended).toBe(1);
    // Sparse meeting reward 1 plus c * (0 - Phi(s_0)) = 1 + 2 * 0.5.
    expect(total).toBeCloseTo(2, 5);
  });
});

describe('multi-agent batch layout', () => {
  it('AgentRouter gives each agent its own rows and scatters its actions back', () => {
    const router = new AgentRouter(2, 3, 2);
    const rows = new Float32Array([0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21]);
    expect(Array.from(router.gather(rows, 1))).toEqual([1, 1, 11, 11, 21, 21]);
    // Each fake policy answers action = first feature of the row + its own offset, log-prob = -offset.
    const seen: number[][] = [];
    const policy = (offset: number) =>
      ({
        sampleHost: (
          obs: Float32Array,
          count: number,
          _rng: Rng,
          actions: Int32Array,
          logProbs: Float32Array,
        ) => {
          seen.push(Array.from(obs.subarray(0, count * 2)));
          for (let k = 0; k < count; k++) {
            actions[k] = obs[2 * k] + offset;
            logProbs[k] = -offset;
          }
        },
      }) as unknown as DiscretePolicy;
    const actions = new Int32Array(6);
    const logProbs = new Float32Array(6);
    router.sample([policy(100), policy(200)], rows, new Rng(1), actions, logProbs);
    expect(seen).toEqual([
      [0, 0, 10, 10, 20, 20],
      [1, 1, 11, 11, 21, 21],
    ]);
    expect(Array.from(actions)).toEqual([100, 201, 110, 211, 120, 221]);
    expect(Array.from(logProbs)).toEqual([-100, -200, -100, -200, -100, -200]);
  });

  it('PpoBatchLayout groups a minibatch by agent and feeds a centralised critic the states', () => {
    // 2 steps x (2 copies x 2 agents): row index i = t * 4 + copy * 2 + agent, agent = i % 2.
    const batch = {
      kind: 'vector',
      numEnvs: 4,
      numSteps: 2,
      observationSize: 1,
      numActions: 2,
      numAgents: 2,
      stateSize: 2,
      observations: new Float32Array(8).map((_, i) => i),
      states: new Float32Array(16).map((_, i) => 100 + i),
    } as unknown as VectorTrajectories;
    const central = { input: 'state' as const } as unknown as Parameters<
      typeof PpoBatchLayout.prototype.copyCriticInput
    >[1];
    const layout = new PpoBatchLayout(batch, 2, central as never, 'ppo');
    expect(layout.centralised).toBe(true);
    expect(layout.criticWidth).toBe(2);
    const order = new Int32Array([5, 2, 7, 0, 3, 6]);
    expect(Array.from(layout.arrange(order, 0, 5))).toEqual([2, 0, 5, 7, 3]);
    expect(layout.agentCounts).toEqual([2, 3]);
    const target = new Float32Array(4);
    layout.copyCriticInput(5, target, 1);
    expect(Array.from(target)).toEqual([0, 0, 110, 111]);
    expect(() => new PpoBatchLayout(batch, 3, undefined, 'ppo')).toThrow(/^ppo\.policy: 3 policies/);
    const single = { ...batch, states: undefined } as VectorTrajectories;
    expect(() => new PpoBatchLayout(single, 1, central as never, 'ppo')).toThrow(
      /^ppo\.value: a centralised critic/,
    );
  });

  it('splits the logits of an arranged minibatch across per-agent policies', () => {
    const batch = { numEnvs: 2, numAgents: 2, observationSize: 1 } as unknown as VectorTrajectories;
    const layout = new PpoBatchLayout(batch, 2, undefined, 'ppo');
    layout.arrange(new Int32Array([0, 1, 3]), 0, 3); // agents 0, 1, 1
    const policy = (scale: number) =>
      ({ logits: (x: tf.Tensor2D) => tf.mul(x, scale) as tf.Tensor2D }) as unknown as Parameters<
        typeof layout.logits
      >[1][number];
    const out = tf.tidy(() => layout.logits(tf, [policy(1), policy(-1)], tf.tensor2d([[1], [2], [3]])));
    expect(Array.from(out.dataSync())).toEqual([1, -2, -3]);
    out.dispose();
  });
});
