import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { GoalConditionedEnv, VectorStep } from '../contracts.ts';
import { ShareTally, type TypedStateSpec, typedStateHooks } from './typed-state.ts';

/** Bit-flipping copies: `bits` holds the state, `goals` the goal, n bytes per copy. */
export class BitFlipVector implements GoalConditionedEnv {
  readonly observationSize: number;
  readonly goalSpace: { achievedOffset: number; goalOffset: number; size: number };
  readonly numActions: number;
  readonly bits: Uint8Array;
  readonly goals: Uint8Array;
  readonly elapsed: Int32Array;
  private readonly obs: Float32Array;
  private readonly result: VectorStep;
  /** Since the last `metrics()` call: share of flips of a wrong bit, share of ended episodes solved. */
  private readonly optimal = new ShareTally();
  private readonly success = new ShareTally();

  constructor(
    readonly nodeId: string,
    readonly numEnvs: number,
    readonly n: number,
    private readonly rng: Rng,
  ) {
    this.observationSize = 2 * n;
    this.numActions = n;
    this.goalSpace = { achievedOffset: 0, goalOffset: n, size: n };
    this.bits = new Uint8Array(numEnvs * n);
    this.goals = new Uint8Array(numEnvs * n);
    this.elapsed = new Int32Array(numEnvs);
    this.obs = new Float32Array(numEnvs * 2 * n);
    this.result = {
      rewards: new Float32Array(numEnvs),
      terminated: new Uint8Array(numEnvs),
      truncated: new Uint8Array(numEnvs),
      finalObservations: new Float32Array(numEnvs * 2 * n),
    };
    for (let e = 0; e < numEnvs; e++) this.reset(e);
  }

  private atGoal(e: number): boolean {
    const o = e * this.n;
    for (let k = 0; k < this.n; k++) if (this.bits[o + k] !== this.goals[o + k]) return false;
    return true;
  }

  /** New random start and goal; redrawn until they differ so that every episode needs a step. */
  private reset(e: number): void {
    const o = e * this.n;
    do {
      for (let k = 0; k < this.n; k++) {
        this.bits[o + k] = this.rng.int(2);
        this.goals[o + k] = this.rng.int(2);
      }
    } while (this.atGoal(e));
    this.elapsed[e] = 0;
  }

  private write(target: Float32Array, e: number): void {
    const o = e * this.n;
    const w = e * 2 * this.n;
    for (let k = 0; k < this.n; k++) {
      target[w + k] = this.bits[o + k];
      target[w + this.n + k] = this.goals[o + k];
    }
  }

  observations(): Float32Array {
    for (let e = 0; e < this.numEnvs; e++) this.write(this.obs, e);
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards, terminated, truncated, finalObservations } = this.result;
    for (let e = 0; e < this.numEnvs; e++) {
      const a = actions[e];
      if (!Number.isInteger(a) || a < 0 || a >= this.n) {
        throw new NodeError(this.nodeId, `action ${a} out of range 0..${this.n - 1}`, 'actions');
      }
      // Optimal: flip a bit that differs from the goal (every such flip shortens the distance by one).
      this.optimal.count(this.bits[e * this.n + a] !== this.goals[e * this.n + a]);
      this.bits[e * this.n + a] ^= 1;
      this.elapsed[e] += 1;
      const done = this.atGoal(e);
      rewards[e] = done ? 0 : -1;
      terminated[e] = done ? 1 : 0;
      truncated[e] = !done && this.elapsed[e] >= this.n ? 1 : 0;
      if (done || truncated[e]) {
        this.success.count(done);
        this.write(finalObservations, e);
        this.reset(e);
      }
    }
    return this.result;
  }

  goalReached(achieved: Float32Array, achievedAt: number, goal: Float32Array, goalAt: number): boolean {
    for (let k = 0; k < this.n; k++) if (achieved[achievedAt + k] !== goal[goalAt + k]) return false;
    return true;
  }

  /** The task's reward as a function of (achieved bits, goal bits): 0 at the goal, -1 elsewhere. */
  goalReward(achieved: Float32Array, achievedAt: number, goal: Float32Array, goalAt: number): number {
    return this.goalReached(achieved, achievedAt, goal, goalAt) ? 0 : -1;
  }

  /** Share of flips that fixed a wrong bit, and share of ended episodes that reached the goal. */
  metrics(): Record<string, number> {
    return { optimal_action_rate: this.optimal.drain(), success_rate: this.success.drain() };
  }

  /** What a checkpoint keeps: every copy's bits, goal and clock, and the metrics' tallies. */
  checkpointState(): TypedStateSpec {
    return {
      arrays: { bits: this.bits, goals: this.goals, elapsed: this.elapsed },
      numbers: { optimal: this.optimal.numbers, success: this.success.numbers },
      sizedBy: 'numEnvs',
    };
  }
}

export default defineNode({
  type: 'env.bit-flip',
  family: 'environment',
  title: 'Bit flipping',
  summary: 'Flip n bits to match a goal; sparse -1 reward (HER task), vectorised copies.',
  doc: `The bit-flipping task of Hindsight Experience Replay (Andrychowicz et al., NeurIPS 2017), where
plain RL almost never sees a reward once n grows past ~15.

- State: n bits; goal: n bits, both uniform at reset (redrawn until they differ).
- Observation: state ++ goal, 2n values in {0, 1}. Action k in 0..n-1 flips bit k.
- Reward -1 for every step that does not end at the goal, 0 for the step that reaches it.
- **Terminates** when state = goal; **truncates** after n steps (the time limit of the paper), not a
  terminal state. Copies reset automatically when their episode ends.
- Metrics (published by the rollout): \`optimal_action_rate\` (share of flips of a bit that differs from
  the goal) and \`success_rate\` (share of ended episodes that reached the goal) since the last iteration.
- Goal-conditioned (for \`credit.her\`): the achieved goal is the state (observation 0..n-1), the goal sits
  at n..2n-1, and r(achieved, goal) = 0 if they are equal, else -1 (ending the episode when equal).`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      provides: { observation: 'vector', action: 'discrete' },
    },
  ],
  params: z.object({
    numEnvs: z.number().int().min(1).max(4096).default(4).describe('Copies stepped together'),
    n: z.number().int().min(1).max(64).default(10).describe('Number of bits (and step limit)'),
  }),
  keyParams: ['n', 'numEnvs'],
  create(params, ctx) {
    const env = new BitFlipVector(ctx.nodeId, params.numEnvs, params.n, ctx.rng);
    return {
      components: { env },
      ...typedStateHooks(ctx.nodeId, env.checkpointState()),
    };
  },
});
