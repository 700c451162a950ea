import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { MultiAgentEnv, VectorStep } from '../contracts.ts';
import { type TypedStateSpec, typedStateHooks } from './typed-state.ts';

/** Actions: stay, up, down, left, right (grid y grows downwards). */
export const MEET_MOVES: ReadonlyArray<readonly [number, number]> = [
  [0, 0],
  [0, -1],
  [0, 1],
  [-1, 0],
  [1, 0],
];

export interface CooperativeMeetOptions {
  numCopies: number;
  numAgents: number;
  size: number;
  horizon: number;
  /** Append a one-hot agent index to each agent's observation (for a shared policy). */
  agentId: boolean;
  /** Weight c of the potential-based shaping term c (gamma Phi(s') - Phi(s)); 0 = sparse reward only. */
  shaping: number;
  /** The gamma of the shaping term (match the credit assigner's). */
  shapingGamma: number;
}

/**
 * Copies of the meeting task. Per copy: agent positions (x, y), the target (x, y) and the step count.
 * Row r = copy * numAgents + agent, as MultiAgentEnv prescribes.
 */
export class CooperativeMeetEnv implements MultiAgentEnv {
  readonly numAgents: number;
  readonly numCopies: number;
  readonly numEnvs: number;
  readonly numActions = MEET_MOVES.length;
  readonly observationSize: number;
  readonly stateSize: number;
  /** [numCopies * numAgents * 2] agent x, y. */
  readonly positions: Int32Array;
  /** [numCopies * 2] target x, y. */
  readonly targets: Int32Array;
  /** Steps taken in the current episode, per copy. */
  readonly clock: Int32Array;
  private readonly obs: Float32Array;
  private readonly stateBuffer: Float32Array;
  private readonly finalStateBuffer: Float32Array;
  private readonly result: VectorStep;
  /** Since the last metrics() call: episodes ended, how many ended by meeting, and their lengths. */
  private readonly tally = { episodesEnded: 0, meetings: 0, meetingSteps: 0 };

  constructor(
    readonly nodeId: string,
    readonly options: CooperativeMeetOptions,
    private readonly rng: Rng,
  ) {
    const { numCopies, numAgents } = options;
    this.numCopies = numCopies;
    this.numAgents = numAgents;
    this.numEnvs = numCopies * numAgents;
    this.observationSize = 5 + (options.agentId ? numAgents : 0);
    this.stateSize = 2 * numAgents + 3;
    this.positions = new Int32Array(numCopies * numAgents * 2);
    this.targets = new Int32Array(numCopies * 2);
    this.clock = new Int32Array(numCopies);
    this.obs = new Float32Array(this.numEnvs * this.observationSize);
    this.stateBuffer = new Float32Array(numCopies * this.stateSize);
    this.finalStateBuffer = new Float32Array(numCopies * this.stateSize);
    this.result = {
      rewards: new Float32Array(this.numEnvs),
      terminated: new Uint8Array(this.numEnvs),
      truncated: new Uint8Array(this.numEnvs),
      finalObservations: new Float32Array(this.numEnvs * this.observationSize),
    };
    for (let c = 0; c < numCopies; c++) this.reset(c);
  }

  private reset(c: number): void {
    const { size, numAgents } = this.options;
    for (let a = 0; a < numAgents; a++) {
      const p = (c * numAgents + a) * 2;
      this.positions[p] = this.rng.int(size);
      this.positions[p + 1] = this.rng.int(size);
    }
    this.targets[2 * c] = this.rng.int(size);
    this.targets[2 * c + 1] = this.rng.int(size);
    this.clock[c] = 0;
  }

  /** Agent a of copy c sees: offset to the target, its own position, the time, [its index one-hot]. */
  private writeObservation(target: Float32Array, c: number, a: number): void {
    const { size, horizon, numAgents, agentId } = this.options;
    const scale = Math.max(1, size - 1);
    const row = c * numAgents + a;
    const o = row * this.observationSize;
    const p = row * 2;
    target[o] = (this.targets[2 * c] - this.positions[p]) / scale;
    target[o + 1] = (this.targets[2 * c + 1] - this.positions[p + 1]) / scale;
    target[o + 2] = this.positions[p] / scale;
    target[o + 3] = this.positions[p + 1] / scale;
    target[o + 4] = this.clock[c] / horizon;
    if (agentId) for (let k = 0; k < numAgents; k++) target[o + 5 + k] = k === a ? 1 : 0;
  }

  /** The global state of copy c: every agent's position, the target and the time. */
  private writeState(target: Float32Array, c: number): void {
    const { size, horizon, numAgents } = this.options;
    const scale = Math.max(1, size - 1);
    const o = c * this.stateSize;
    for (let k = 0; k < 2 * numAgents; k++) target[o + k] = this.positions[c * numAgents * 2 + k] / scale;
    target[o + 2 * numAgents] = this.targets[2 * c] / scale;
    target[o + 2 * numAgents + 1] = this.targets[2 * c + 1] / scale;
    target[o + 2 * numAgents + 2] = this.clock[c] / horizon;
  }

  observations(): Float32Array {
    for (let c = 0; c < this.numCopies; c++) {
      for (let a = 0; a < this.numAgents; a++) this.writeObservation(this.obs, c, a);
    }
    return this.obs;
  }

  states(): Float32Array {
    for (let c = 0; c < this.numCopies; c++) this.writeState(this.stateBuffer, c);
    return this.stateBuffer;
  }

  finalStates(): Float32Array {
    return this.finalStateBuffer;
  }

  /** Phi(s) = -(1/n) sum_i ||target - p_i||_1 / (2 (size - 1)): 0 when all stand on the target, >= -1. */
  potential(c: number): number {
    const A = this.numAgents;
    let distance = 0;
    for (let a = 0; a < A; a++) {
      const p = (c * A + a) * 2;
      distance +=
        Math.abs(this.targets[2 * c] - this.positions[p]) +
        Math.abs(this.targets[2 * c + 1] - this.positions[p + 1]);
    }
    return -distance / (A * 2 * Math.max(1, this.options.size - 1));
  }

  /** All agents of copy c stand on its target. */
  met(c: number): boolean {
    const A = this.numAgents;
    for (let a = 0; a < A; a++) {
      const p = (c * A + a) * 2;
      if (this.positions[p] !== this.targets[2 * c] || this.positions[p + 1] !== this.targets[2 * c + 1]) {
        return false;
      }
    }
    return true;
  }

  step(actions: Int32Array): VectorStep {
    const { size, horizon } = this.options;
    const A = this.numAgents;
    const { rewards, terminated, truncated, finalObservations } = this.result;
    if (actions.length < this.numEnvs) {
      throw new NodeError(
        this.nodeId,
        `expected ${this.numEnvs} actions (copies x agents), got ${actions.length}`,
      );
    }
    for (let c = 0; c < this.numCopies; c++) {
      const before = this.options.shaping ? this.potential(c) : 0;
      for (let a = 0; a < A; a++) {
        const action = actions[c * A + a];
        const move = MEET_MOVES[action];
        if (!move) throw new NodeError(this.nodeId, `action ${action} is not in 0..4`);
        const p = (c * A + a) * 2;
        this.positions[p] = Math.min(size - 1, Math.max(0, this.positions[p] + move[0]));
        this.positions[p + 1] = Math.min(size - 1, Math.max(0, this.positions[p + 1] + move[1]));
      }
      this.clock[c] += 1;
      const success = this.met(c);
      // The clock is in every observation and in the state, so the time limit is a true terminal state.
      const ended = success || this.clock[c] >= horizon;
      // Potential-based shaping (Ng et al. 1999), with Phi = 0 at terminal states so that it sums to
      // -Phi(s_0) over any episode and leaves the optimal policies unchanged.
      const after = ended ? 0 : this.potential(c);
      const shaped = this.options.shaping
        ? this.options.shaping * (this.options.shapingGamma * after - before)
        : 0;
      for (let a = 0; a < A; a++) {
        const row = c * A + a;
        rewards[row] = (success ? 1 : 0) + shaped;
        terminated[row] = ended ? 1 : 0;
        truncated[row] = 0;
      }
      if (ended) {
        this.tally.episodesEnded += 1;
        if (success) {
          this.tally.meetings += 1;
          this.tally.meetingSteps += this.clock[c];
        }
        for (let a = 0; a < A; a++) this.writeObservation(finalObservations, c, a);
        this.writeState(this.finalStateBuffer, c);
        this.reset(c);
      }
    }
    return this.result;
  }

  /** success_rate: share of the episodes ended since the last call in which the agents met. */
  metrics(): Record<string, number> {
    const t = this.tally;
    const out = {
      success_rate: t.meetings / Math.max(1, t.episodesEnded),
      steps_to_meet: t.meetings ? t.meetingSteps / t.meetings : this.options.horizon,
    };
    t.episodesEnded = t.meetings = t.meetingSteps = 0;
    return out;
  }

  /** What a checkpoint keeps: agent positions, targets and clocks of every copy, and the metric tally. */
  checkpointState(): TypedStateSpec {
    return {
      arrays: { positions: this.positions, targets: this.targets, clock: this.clock },
      numbers: { tally: this.tally },
      sizedBy: 'numEnvs',
    };
  }
}

export default defineNode({
  type: 'env.cooperative-meet',
  family: 'environment',
  title: 'Cooperative meet',
  summary: 'Agents on a grid share a reward for all standing on the target at once.',
  doc: `A cooperative grid task for multi-agent credit assignment in the spirit of the cooperative
navigation tasks of Lowe et al. 2017 (MADDPG, "Multi-Agent Actor-Critic for Mixed Cooperative-Competitive
Environments") and the decentralised-execution setting of Yu et al. 2022 (MAPPO).

- A \`size\` x \`size\` grid, \`numAgents\` agents and one target, all placed uniformly at random each
  episode. Each agent picks one of 5 actions: stay, up, down, left, right (moves off the grid are clamped).
- Shared reward: r_t = 1 on the step where **every** agent stands on the target, which ends the episode;
  0 otherwise. An agent that arrives early has to wait there: leaving costs the team the reward.
- Episodes end after \`horizon\` steps at the latest. The elapsed time t / horizon is part of every
  observation and of the state, so the time limit is a terminal state of a Markov problem.
- Observation of agent i (its own, decentralised): (target - p_i) / (size - 1), p_i / (size - 1),
  t / horizon, and a one-hot agent index when \`agentId\` is on (the agent-id feature of parameter sharing).
  Agents do not see each other.
- Metrics (through the rollout): \`success_rate\`, the share of episodes in which the team met, and
  \`steps_to_meet\`, the mean length of those episodes.
- Global state s (for centralised critics): every agent's position, the target, t / horizon.

Rows are (copy, agent) pairs: row = copy * numAgents + agent; the reward and the episode end are
repeated on each agent's row.

Optional potential-based shaping (Ng, Harada & Russell 1999, "Policy invariance under reward
transformations"): r'_t = r_t + c (gamma Phi(s_{t+1}) - Phi(s_t)) with Phi(s) = -(1/n) sum_i
||target - p_i||_1 / (2 (size - 1)) and Phi = 0 at terminal states. It telescopes to -c Phi(s_0) over an
episode, so it changes no optimal policy, but it gives the team a dense signal while it has not yet met.
The episode return then includes that constant; the meeting rate is reported separately.

Without shaping the optimal return is 1 (for gamma < 1, reached in max_i ||target - p_i||_1
steps); a random policy rarely scores.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      provides: { observation: 'vector', action: 'discrete', agents: 'multi' },
    },
  ],
  params: z.object({
    numEnvs: z.number().int().min(1).max(4096).default(16).describe('Copies of the task stepped together'),
    numAgents: z.number().int().min(2).max(8).default(2).describe('Agents per copy'),
    size: z.number().int().min(2).max(32).default(5).describe('Grid side length'),
    horizon: z.number().int().min(1).max(1000).default(20).describe('Steps before an episode ends'),
    agentId: z.boolean().default(true).describe("Append a one-hot agent index to each agent's observation"),
    shaping: z
      .number()
      .min(0)
      .max(10)
      .default(0)
      .describe('Weight of the potential-based distance shaping (0 = sparse meeting reward only)'),
    shapingGamma: z
      .number()
      .min(0)
      .max(1)
      .default(0.99)
      .describe("Gamma of the shaping term (the learner's)"),
  }),
  keyParams: ['numAgents', 'size', 'horizon'],
  create(params, ctx) {
    const env = new CooperativeMeetEnv(
      ctx.nodeId,
      {
        numCopies: params.numEnvs,
        numAgents: params.numAgents,
        size: params.size,
        horizon: params.horizon,
        agentId: params.agentId,
        shaping: params.shaping,
        shapingGamma: params.shapingGamma,
      },
      ctx.rng,
    );
    return {
      components: { env },
      ...typedStateHooks(ctx.nodeId, env.checkpointState()),
    };
  },
});
