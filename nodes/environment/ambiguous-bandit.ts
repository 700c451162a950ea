import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorStep } from '../contracts.ts';
import { ShareTally, type TypedStateSpec, typedStateHooks } from './typed-state.ts';

const OBS = 3; // one-hot over {start, state of arm 0, state of arm 1}

/** One-step ambiguous bandit copies: every episode starts in the same state, so no copy state is kept. */
export class AmbiguousBanditVector implements VectorEnv {
  readonly observationSize = OBS;
  readonly numActions = 2;
  /** The state each copy landed in on the last step (0 or 1), for inspection. */
  readonly landed: Int32Array;
  private readonly obs: Float32Array;
  private readonly result: VectorStep;
  /** Share of pulls of arm 0 since the last `metrics()` call. */
  private readonly optimal = new ShareTally();

  constructor(
    readonly nodeId: string,
    readonly numEnvs: number,
    readonly means: [number, number],
    readonly std: number,
    readonly eps: number,
    private readonly rng: Rng,
  ) {
    this.landed = new Int32Array(numEnvs);
    this.obs = new Float32Array(numEnvs * OBS);
    for (let e = 0; e < numEnvs; e++) this.obs[e * OBS] = 1;
    this.result = {
      rewards: new Float32Array(numEnvs),
      terminated: new Uint8Array(numEnvs),
      truncated: new Uint8Array(numEnvs),
      finalObservations: new Float32Array(numEnvs * OBS),
    };
  }

  observations(): Float32Array {
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards, terminated, truncated, finalObservations } = this.result;
    for (let e = 0; e < this.numEnvs; e++) {
      const a = actions[e];
      if (a !== 0 && a !== 1) throw new NodeError(this.nodeId, `action ${a} is not 0 or 1`, 'actions');
      this.optimal.count(a === 0);
      const state = this.rng.float() < this.eps ? 1 - a : a;
      this.landed[e] = state;
      rewards[e] = this.means[state] + this.std * this.rng.normal();
      terminated[e] = 1;
      truncated[e] = 0;
      const o = e * OBS;
      finalObservations[o] = 0;
      finalObservations[o + 1] = state === 0 ? 1 : 0;
      finalObservations[o + 2] = state === 1 ? 1 : 0;
    }
    return this.result;
  }

  /** The share of pulls of the better arm 0 since the last call. */
  metrics(): Record<string, number> {
    return { optimal_action_rate: this.optimal.drain() };
  }

  /** What a checkpoint keeps: the metric tally (the draws come from the node's RNG stream). */
  checkpointState(): TypedStateSpec {
    return { numbers: { optimal: this.optimal.numbers } };
  }
}

export default defineNode({
  type: 'env.ambiguous-bandit',
  family: 'environment',
  title: 'Ambiguous bandit',
  summary: 'Two-armed bandit whose arms sometimes land in the other arm’s state (HCA).',
  doc: `The "Ambiguous Bandit" of Harutyunyan et al., NeurIPS 2019 ("Hindsight Credit Assignment").

- One-step episodes from a single start state. Action a in {0, 1} leads to state a with probability
  1 - eps and to the other arm's state with probability eps (eps = 0.1).
- The reward depends on the state reached: N(2, 1.5^2) in arm 0's state, N(1, 1.5^2) in arm 1's (std 1.5
  as in the paper). Arm 0 is optimal; an action's return mixes in the other arm's rewards, which is
  the noise hindsight (state-conditioned) credit removes.
- Observation: one-hot over {start, state 0, state 1}; every step terminates, and the final
  observation shows the state reached. Metric (published by the rollout): \`optimal_action_rate\`, the
  share of pulls of arm 0 since the last iteration. Checkpoints keep the metric tally; the RNG stream is
  checkpointed by the runtime.`,
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
    eps: z.number().min(0).max(1).default(0.1).describe('Probability of landing in the other state'),
    mean0: z.number().min(-100).max(100).default(2).describe('Mean reward in arm 0’s state'),
    mean1: z.number().min(-100).max(100).default(1).describe('Mean reward in arm 1’s state'),
    std: z.number().min(0).max(100).default(1.5).describe('Reward standard deviation'),
  }),
  keyParams: ['eps', 'numEnvs'],
  create(params, ctx) {
    const env = new AmbiguousBanditVector(
      ctx.nodeId,
      params.numEnvs,
      [params.mean0, params.mean1],
      params.std,
      params.eps,
      ctx.rng,
    );
    return { components: { env }, ...typedStateHooks(ctx.nodeId, env.checkpointState()) };
  },
});
