import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { DiscretePolicy, VectorEnv } from '../contracts.ts';

export class MlpCategoricalPolicy implements DiscretePolicy {
  private logitsScratch = new Float32Array(0);
  private probs = new Float64Array(0);

  constructor(
    readonly nodeId: string,
    readonly net: Mlp,
  ) {}

  get observationSize(): number {
    return this.net.inputSize;
  }

  get numActions(): number {
    return this.net.outputSize;
  }

  get variables(): TF.Variable[] {
    return this.net.variables;
  }

  logits(observations: TF.Tensor2D): TF.Tensor2D {
    return this.net.apply(observations);
  }

  syncHost(): Promise<void> {
    return this.net.syncHost();
  }

  sampleHost(
    observations: Float32Array,
    count: number,
    rng: Rng,
    actions: Int32Array,
    logProbs: Float32Array,
  ): void {
    const k = this.numActions;
    if (this.logitsScratch.length < count * k) this.logitsScratch = new Float32Array(count * k);
    if (this.probs.length < k) this.probs = new Float64Array(k);
    const logits = this.logitsScratch;
    const probs = this.probs;
    this.net.forwardHost(observations, count, logits);
    for (let row = 0; row < count; row++) {
      const o = row * k;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < k; j++) max = Math.max(max, logits[o + j]);
      let total = 0;
      for (let j = 0; j < k; j++) {
        probs[j] = Math.exp(logits[o + j] - max);
        total += probs[j];
      }
      const action = rng.categorical(probs, 0, k);
      actions[row] = action;
      logProbs[row] = logits[o + action] - max - Math.log(total);
    }
  }
}

export default defineNode({
  type: 'agent.mlp-policy',
  family: 'agent',
  title: 'MLP policy',
  summary: 'Categorical policy: an MLP from vector observations to action logits.',
  doc: `A feed-forward network maps the observation to one logit per action; actions are sampled from
softmax(logits). Weights use orthogonal initialisation (Saxe et al. 2014) with gain sqrt(2) on hidden
layers and a small gain (0.01) on the output layer, so the initial policy is near uniform — the choice of
the PPO implementation studies (Engstrom et al. 2020; Huang et al. 2022, "The 37 implementation details of
PPO"). While collecting experience the network runs on the host from weights read once per iteration;
training runs the same network through TensorFlow.js ops.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'Sets the observation size and the number of actions.',
      accepts: { observation: ['vector'], action: ['discrete'] },
    },
  ],
  outputs: [{ name: 'policy', type: 'Policy', title: 'Policy', provides: { action: 'discrete' } }],
  params: z.object({
    hidden: z
      .array(z.number().int().min(1).max(4096))
      .min(0)
      .max(8)
      .default([64, 64])
      .describe('Hidden layer sizes'),
    activation: z.enum(['tanh', 'relu']).default('tanh'),
    outputGain: z.number().min(0).max(10).default(0.01).describe('Orthogonal-init gain of the logits layer'),
  }),
  keyParams: ['hidden', 'activation'],
  create(params, ctx) {
    const env = ctx.inputs.env as VectorEnv;
    const sizes = [env.observationSize, ...params.hidden, env.numActions];
    const gains = [...params.hidden.map(() => Math.SQRT2), params.outputGain];
    const net = new Mlp(ctx.tf, { sizes, activation: params.activation, gains }, ctx.rng, ctx.nodeId);
    const policy = new MlpCategoricalPolicy(ctx.nodeId, net);
    return {
      components: { policy },
      saveState: async () => ({ arrays: await net.saveArrays() }),
      loadState: (state) => net.loadArrays(state.arrays ?? {}),
      dispose: () => net.dispose(),
    };
  },
});
