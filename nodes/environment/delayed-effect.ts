import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorStep } from '../contracts.ts';
import { ShareTally, type TypedStateSpec, typedStateHooks } from './typed-state.ts';

const OBS = 2; // [at start, in an aliased state]

/** Delayed-effect copies: `position` 0 = start, 1..n = aliased state k; `choice` the first action. */
export class DelayedEffectVector implements VectorEnv {
  readonly observationSize = OBS;
  readonly numActions = 2;
  readonly position: Int32Array;
  readonly choice: Int32Array;
  private readonly obs: Float32Array;
  private readonly result: VectorStep;
  /** Share of first decisions since the last `metrics()` call that took action 0. */
  private readonly optimal = new ShareTally();

  constructor(
    readonly nodeId: string,
    readonly numEnvs: number,
    readonly n: number,
    readonly sigma: number,
    private readonly rng: Rng,
  ) {
    this.position = new Int32Array(numEnvs);
    this.choice = new Int32Array(numEnvs);
    this.obs = new Float32Array(numEnvs * OBS);
    this.result = {
      rewards: new Float32Array(numEnvs),
      terminated: new Uint8Array(numEnvs),
      truncated: new Uint8Array(numEnvs),
      finalObservations: new Float32Array(numEnvs * OBS),
    };
  }

  private write(target: Float32Array, e: number): void {
    const start = this.position[e] === 0;
    target[e * OBS] = start ? 1 : 0;
    target[e * OBS + 1] = start ? 0 : 1;
  }

  observations(): Float32Array {
    for (let e = 0; e < this.numEnvs; e++) this.write(this.obs, e);
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards, terminated, truncated, finalObservations } = this.result;
    for (let e = 0; e < this.numEnvs; e++) {
      const a = actions[e];
      if (a !== 0 && a !== 1) throw new NodeError(this.nodeId, `action ${a} is not 0 or 1`, 'actions');
      truncated[e] = 0;
      terminated[e] = 0;
      if (this.position[e] === 0) {
        this.choice[e] = a;
        this.optimal.count(a === 0);
        this.position[e] = 1;
        rewards[e] = 0;
        continue;
      }
      const last = this.position[e] === this.n;
      rewards[e] = this.sigma * this.rng.normal() + (last ? (this.choice[e] === 0 ? 1 : -1) : 0);
      if (last) {
        terminated[e] = 1;
        this.write(finalObservations, e);
        this.position[e] = 0;
        this.choice[e] = 0;
      } else {
        this.position[e] += 1;
      }
    }
    return this.result;
  }

  /** The share of first decisions that took the optimal action 0 (the only decision that matters). */
  metrics(): Record<string, number> {
    return { optimal_action_rate: this.optimal.drain() };
  }

  /** What a checkpoint keeps: every copy's position and first choice, and the metric's tally. */
  checkpointState(): TypedStateSpec {
    return {
      arrays: { position: this.position, choice: this.choice },
      numbers: { optimal: this.optimal.numbers },
      sizedBy: 'numEnvs',
    };
  }
}

export default defineNode({
  type: 'env.delayed-effect',
  family: 'environment',
  title: 'Delayed effect',
  summary: 'The first action decides a final ±1 after n noisy aliased steps (HCA).',
  doc: `The "Delayed Effect" task of Harutyunyan et al., NeurIPS 2019 ("Hindsight Credit Assignment").

- Step 0, in the start state: action 0 earns a final +1, action 1 a final -1; reward 0 now.
- Then n aliased states (n = 3): every action is equivalent and every step pays N(0, sigma^2) noise
  (sigma = 2). The last aliased step also pays the final +-1 and **terminates**; episodes are n + 1
  steps long and never truncated.
- Observation: [1, 0] at the start, [0, 1] in every aliased state, so the aliased states (and the first
  choice) cannot be told apart: only credit assignment links the final reward to the first action.
- Copies reset automatically; the state is the position and the first choice of every copy.
- Metric (published by the rollout): \`optimal_action_rate\`, the share of first decisions since the last
  iteration that took action 0, the true measure the paper plots (returns are too noisy to show it).`,
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
    n: z.number().int().min(1).max(1000).default(3).describe('Number of aliased states'),
    sigma: z.number().min(0).max(100).default(2).describe('Std of the noise rewards'),
  }),
  keyParams: ['n', 'sigma'],
  create(params, ctx) {
    const env = new DelayedEffectVector(ctx.nodeId, params.numEnvs, params.n, params.sigma, ctx.rng);
    return {
      components: { env },
      ...typedStateHooks(ctx.nodeId, env.checkpointState()),
    };
  },
});
