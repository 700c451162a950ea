import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorStep } from '../contracts.ts';
import { ShareTally, type TypedStateSpec, typedStateHooks } from './typed-state.ts';

const FORWARD = 0;
const SHORTCUT = 1;

/** Shortcut chain copies; `position` 0..n-1 is the state of every copy. */
export class ShortcutVector implements VectorEnv {
  readonly numActions = 2;
  readonly observationSize: number;
  readonly position: Int32Array;
  private readonly obs: Float32Array;
  private readonly result: VectorStep;
  /** Share of decisions since the last `metrics()` call that took the shortcut. */
  private readonly optimal = new ShareTally();

  constructor(
    readonly nodeId: string,
    readonly numEnvs: number,
    readonly n: number,
    readonly eps: number,
    private readonly rng: Rng,
  ) {
    this.observationSize = n;
    this.position = new Int32Array(numEnvs);
    this.obs = new Float32Array(numEnvs * n);
    this.result = {
      rewards: new Float32Array(numEnvs),
      terminated: new Uint8Array(numEnvs),
      truncated: new Uint8Array(numEnvs),
      finalObservations: new Float32Array(numEnvs * n),
    };
  }

  private write(target: Float32Array, e: number, position: number): void {
    target.fill(0, e * this.n, (e + 1) * this.n);
    target[e * this.n + position] = 1;
  }

  observations(): Float32Array {
    for (let e = 0; e < this.numEnvs; e++) this.write(this.obs, e, this.position[e]);
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards, terminated, truncated, finalObservations } = this.result;
    for (let e = 0; e < this.numEnvs; e++) {
      const a = actions[e];
      if (a !== FORWARD && a !== SHORTCUT) {
        throw new NodeError(this.nodeId, `action ${a} is not 0 (forward) or 1 (shortcut)`, 'actions');
      }
      this.optimal.count(a === SHORTCUT);
      rewards[e] = -1;
      truncated[e] = 0;
      const jumps = a === SHORTCUT && this.rng.float() >= this.eps;
      const next = jumps ? this.n : this.position[e] + 1;
      terminated[e] = next >= this.n ? 1 : 0;
      if (terminated[e]) {
        this.write(finalObservations, e, this.n - 1);
        this.position[e] = 0;
      } else {
        this.position[e] = next;
      }
    }
    return this.result;
  }

  /** Share of the decisions since the last call that took the shortcut (the optimal action everywhere). */
  metrics(): Record<string, number> {
    return { optimal_action_rate: this.optimal.drain() };
  }

  /** What a checkpoint keeps: every copy's position and the metric tally. */
  checkpointState(): TypedStateSpec {
    return {
      arrays: { position: this.position },
      numbers: { optimal: this.optimal.numbers },
      sizedBy: 'numEnvs',
    };
  }
}

export default defineNode({
  type: 'env.shortcut',
  family: 'environment',
  title: 'Shortcut chain',
  summary: 'A chain of n states at -1 per step, with a shortcut action that jumps to the end (HCA).',
  doc: `The "Shortcut" task of Harutyunyan et al., NeurIPS 2019 ("Hindsight Credit Assignment"), as we read
it: a chain of n states, every step costs -1, the episode ends on leaving the last state.

- Action 0 (forward) moves one state along the chain.
- Action 1 (shortcut) reaches the end of the chain at once with probability 1 - eps, and otherwise (with
  probability eps) moves one state along like action 0.
- Optimal: the shortcut everywhere (return -1 with probability 1 - eps); a policy that rarely tries it
  sees few shortcut outcomes, which is where hindsight credit helps (the paper: n = 5, gamma 0.99).
- Observation: one-hot position (n values). Episodes terminate, never truncate (at most n steps).
- Metric (published by the rollout): \`optimal_action_rate\`, the share of decisions that took the shortcut.`,
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
    numEnvs: z.number().int().min(1).max(4096).default(8).describe('Copies stepped together'),
    n: z.number().int().min(2).max(1000).default(5).describe('Chain length'),
    eps: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('Probability that the shortcut fails (moves one step)'),
  }),
  keyParams: ['n', 'eps'],
  create(params, ctx) {
    const env = new ShortcutVector(ctx.nodeId, params.numEnvs, params.n, params.eps, ctx.rng);
    return {
      components: { env },
      ...typedStateHooks(ctx.nodeId, env.checkpointState()),
    };
  },
});
