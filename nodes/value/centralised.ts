import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { isMultiAgentEnv, type ValueFunction, type VectorEnv } from '../contracts.ts';

/** V(s) on the global state of a multi-agent environment; rollouts and trainers feed it `states`. */
export class CentralisedValueFunction implements ValueFunction {
  readonly input = 'state';

  constructor(
    readonly nodeId: string,
    readonly net: Mlp,
  ) {}

  get stateSize(): number {
    return this.net.inputSize;
  }

  get variables(): TF.Variable[] {
    return this.net.variables;
  }

  values(states: TF.Tensor2D): TF.Tensor1D {
    if (states.shape[1] !== this.stateSize) {
      throw new NodeError(
        this.nodeId,
        `got inputs of width ${states.shape[1]}, the global state has ${this.stateSize}: a centralised critic needs a multi-agent batch with states`,
      );
    }
    const out = this.net.apply(states);
    const flat = out.reshape([-1]) as TF.Tensor1D;
    out.dispose();
    return flat;
  }

  syncHost(): Promise<void> {
    return this.net.syncHost();
  }

  predictHost(states: Float32Array, count: number, out: Float32Array, offset = 0): void {
    if (states.length !== count * this.stateSize) {
      throw new NodeError(
        this.nodeId,
        `got ${states.length} numbers for ${count} global states of size ${this.stateSize}; wire this critic to rollout.multi-agent, which feeds it states`,
      );
    }
    const tmp = offset === 0 && out.length === count ? out : new Float32Array(count);
    this.net.forwardHost(states, count, tmp);
    if (tmp !== out) out.set(tmp, offset);
  }
}

export default defineNode({
  type: 'value.centralised',
  family: 'value',
  title: 'Centralised critic',
  summary: 'V(s) on the global state of a multi-agent env (MAPPO, centralised training).',
  doc: `The centralised critic of MAPPO (Yu, Velu, Vinitsky, Gao, Wang, Bayen & Wu, NeurIPS 2022 Datasets and
Benchmarks, "The Surprising Effectiveness of PPO in Cooperative Multi-Agent Games"): centralised
training with decentralised execution. Each agent's policy acts on its own observation o^i, while one
critic estimates the team value from the global state,

  V_phi(s) ~ E[ sum_k gamma^k r_{t+k} | s_t = s ],

which is available during training only. Every agent's advantage is then computed against V(s_t) (e.g.
GAE: delta^i_t = r_t + gamma V(s_{t+1}) - V(s_t), the same for all agents under a shared reward), which
removes the non-stationarity an agent's own V(o^i) suffers as the other agents learn (Lowe et al. 2017).

An MLP (orthogonal init, gain sqrt(2) on hidden layers, 1 on the output) from the env's global state to a
scalar, trained by the trainer it is wired to on the credit assigner's return targets (value clipping and
the loss weight are the trainer's). It reads \`states\`, not observations: wire it to a multi-agent env
and to rollout.multi-agent.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'A multi-agent environment; sets the size of the global state.',
      accepts: { agents: ['multi'] },
    },
  ],
  outputs: [{ name: 'value', type: 'ValueFn', title: 'Value function', provides: { input: 'state' } }],
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
    if (!isMultiAgentEnv(env)) {
      throw new NodeError(ctx.nodeId, 'needs a multi-agent environment with a global state', 'env');
    }
    const sizes = [env.stateSize, ...params.hidden, 1];
    const gains = [...params.hidden.map(() => Math.SQRT2), 1.0];
    const net = new Mlp(ctx.tf, { sizes, activation: params.activation, gains }, ctx.rng, ctx.nodeId);
    return {
      components: { value: new CentralisedValueFunction(ctx.nodeId, net) },
      saveState: async () => ({ arrays: await net.saveArrays() }),
      loadState: (state) => net.loadArrays(state.arrays ?? {}),
      dispose: () => net.dispose(),
    };
  },
});
