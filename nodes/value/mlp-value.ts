import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type { ValueFunction, VectorEnv } from '../contracts.ts';

export class MlpValueFunction implements ValueFunction {
  constructor(
    readonly nodeId: string,
    readonly net: Mlp,
  ) {}

  get variables(): TF.Variable[] {
    return this.net.variables;
  }

  values(observations: TF.Tensor2D): TF.Tensor1D {
    const out = this.net.apply(observations);
    const flat = out.reshape([-1]) as TF.Tensor1D;
    out.dispose();
    return flat;
  }

  syncHost(): Promise<void> {
    return this.net.syncHost();
  }

  predictHost(observations: Float32Array, count: number, out: Float32Array, offset = 0): void {
    const tmp = offset === 0 && out.length === count ? out : new Float32Array(count);
    this.net.forwardHost(observations, count, tmp);
    if (tmp !== out) out.set(tmp, offset);
  }
}

export default defineNode({
  type: 'value.mlp',
  family: 'value',
  title: 'MLP value function',
  summary: 'State-value critic V(s): an MLP from vector observations to a scalar.',
  doc: `Estimates V(s) = E[sum_k gamma^k r_{t+k} | s_t = s], the baseline of actor-critic methods
(Sutton & Barto 2018, ch. 13) and the bootstrap of GAE (Schulman et al. 2016). A separate network from the
policy, orthogonally initialised (gain sqrt(2) hidden, 1.0 output). Trained by the trainer it is wired to,
on the return targets of the credit assigner.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'Sets the observation size.',
      accepts: { observation: ['vector'] },
    },
  ],
  outputs: [{ name: 'value', type: 'ValueFn', title: 'Value function' }],
  params: z.object({
    hidden: z
      .array(z.number().int().min(1).max(4096))
      .min(0)
      .max(8)
      .default([64, 64])
      .describe('Hidden layer sizes'),
    activation: z.enum(['tanh', 'relu']).default('tanh'),
  }),
  keyParams: ['hidden'],
  create(params, ctx) {
    const env = ctx.inputs.env as VectorEnv;
    const sizes = [env.observationSize, ...params.hidden, 1];
    const gains = [...params.hidden.map(() => Math.SQRT2), 1.0];
    const net = new Mlp(ctx.tf, { sizes, activation: params.activation, gains }, ctx.rng, ctx.nodeId);
    return {
      components: { value: new MlpValueFunction(ctx.nodeId, net) },
      saveState: async () => ({ arrays: await net.saveArrays() }),
      loadState: (state) => net.loadArrays(state.arrays ?? {}),
      dispose: () => net.dispose(),
    };
  },
});
