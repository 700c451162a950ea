import { z } from 'zod';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type { Advantages, VectorTrajectories } from '../contracts.ts';
import { vectorEpisodeSamples } from '../samples.ts';

/**
 * Monte-Carlo return-to-go over a time-major batch. For step t of env e (i = t * numEnvs + e):
 *   G_t = r_t + gamma * G_{t+1}, cut at episode ends;
 *   at a termination G_{t+1} = 0; at a truncation G_{t+1} = truncationValues[i] (bootstrap) or 0;
 *   after the batch's last step G_{t+1} = lastValues[e] (bootstrap) or 0.
 *   A_t = G_t - b(s_t), with b = 0 ('none') or the recorded V(s_t) ('value'); returns = G_t.
 */
export function computeMonteCarlo(
  batch: VectorTrajectories,
  gamma: number,
  bootstrap: boolean,
  baseline: 'none' | 'value',
): Advantages {
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
    let next = bootstrap ? lastValues[e] : 0; // G_{t+1}
    for (let t = steps - 1; t >= 0; t--) {
      const i = t * n + e;
      if (terminated[i]) next = 0;
      else if (truncated[i]) next = bootstrap ? truncationValues[i] : 0;
      const g = rewards[i] + gamma * next;
      returns[i] = g;
      advantages[i] = baseline === 'value' ? g - values[i] : g;
      next = g;
    }
  }
  return { advantages, returns };
}

export default defineNode({
  type: 'credit.monte-carlo',
  family: 'credit',
  title: 'Monte-Carlo return',
  summary: 'Discounted return-to-go per episode, optionally minus V(s).',
  doc: `Monte-Carlo credit (Williams 1992, REINFORCE; Sutton & Barto 2018, ch. 5 and 13):

  G_t = sum_k gamma^k r_{t+k}, summed to the end of the episode
  A_t = G_t - b(s_t), b = 0 (baseline 'none') or the recorded V(s_t) (baseline 'value')

Episodes are cut at terminated/truncated. A time-limit truncation, and the end of the batch in the
middle of an episode, are not terminal states: with bootstrap on, the tail is V(final observation) or
V(s_T) (Pardo et al. 2018); with it off, the tail is 0. The value targets are the returns G_t. This is
GAE with lambda = 1, and the plain return estimator that hindsight credit assignment (Harutyunyan et al.
2019) compares against.`,
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
    bootstrap: z.boolean().default(true).describe('Bootstrap from V at truncations and at the batch end'),
    baseline: z.enum(['none', 'value']).default('value').describe('Baseline subtracted from G_t'),
  }),
  keyParams: ['gamma', 'baseline'],
  create(params, ctx) {
    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        const credit = computeMonteCarlo(batch, params.gamma, params.bootstrap, params.baseline);
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
