import { z } from 'zod';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type { Advantages, VectorTrajectories } from '../contracts.ts';
import { vectorEpisodeSamples } from '../samples.ts';

/**
 * GAE(lambda) over a time-major batch. For step t of env e (i = t * numEnvs + e):
 *   next value  = V(final obs) if the episode was truncated at t, 0 if terminated, else V(s_{t+1})
 *   delta_t     = r_t + gamma * next value - V(s_t)
 *   A_t         = delta_t + gamma * lambda * (1 - ended_t) * A_{t+1}
 *   return_t    = A_t + V(s_t)
 */
export function computeGae(batch: VectorTrajectories, gamma: number, lambda: number): Advantages {
  const {
    numEnvs: n,
    numSteps: steps,
    rewards,
    values,
    terminated,
    truncated,
    truncationValues,
    lastValues,
  } = batch;
  const advantages = new Float32Array(steps * n);
  const returns = new Float32Array(steps * n);
  for (let e = 0; e < n; e++) {
    let next = 0; // A_{t+1}
    for (let t = steps - 1; t >= 0; t--) {
      const i = t * n + e;
      const ended = terminated[i] || truncated[i];
      const bootstrap = terminated[i]
        ? 0
        : truncated[i]
          ? truncationValues[i]
          : t === steps - 1
            ? lastValues[e]
            : values[i + n];
      const delta = rewards[i] + gamma * bootstrap - values[i];
      next = delta + (ended ? 0 : gamma * lambda * next);
      advantages[i] = next;
      returns[i] = next + values[i];
    }
  }
  return { advantages, returns };
}

export default defineNode({
  type: 'credit.gae',
  family: 'credit',
  title: 'GAE(λ)',
  summary: 'Generalised advantage estimation from rewards and V(s).',
  doc: `Generalised Advantage Estimation (Schulman, Moritz, Levine, Jordan & Abbeel, ICLR 2016):

  delta_t = r_t + gamma V(s_{t+1}) (1 - terminated_t) - V(s_t)
  A_t = sum_l (gamma lambda)^l delta_{t+l}, cut at episode ends

lambda trades bias (lambda = 0: one-step TD) against variance (lambda = 1: Monte-Carlo return minus V).
A time-limit truncation is not a terminal state: the bootstrap uses V of the final observation (Pardo et
al. 2018). Return targets for the critic: R_t = A_t + V(s_t).`,
  version: 1,
  inputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['vector'] },
    },
  ],
  outputs: [{ name: 'advantages', type: 'Advantages', title: 'Advantages' }],
  params: z.object({
    gamma: z.number().min(0).max(1).default(0.99).describe('Discount factor'),
    lambda: z.number().min(0).max(1).default(0.95).describe('GAE lambda'),
  }),
  keyParams: ['gamma', 'lambda'],
  create(params, ctx) {
    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        const credit = computeGae(batch, params.gamma, params.lambda);
        let sum = 0;
        for (const a of credit.advantages) sum += a;
        return {
          outputs: { advantages: credit },
          metrics: { advantage_mean: sum / credit.advantages.length },
          samples: vectorEpisodeSamples(batch, credit, ctx.nodeId, info.iteration),
        };
      },
    };
  },
});
