import { z } from 'zod';
import { defineNode, NodeError, NonFiniteError } from '../../src-main/engine/node-api.ts';
import type { Advantages, VectorTrajectories } from '../contracts.ts';

/** Gradient ascent on the dual: lambda <- max(0, lambda + eta (J_c - d)). */
export function lagrangianStep(lambda: number, episodeCost: number, costLimit: number, lr: number): number {
  return Math.max(0, lambda + lr * (episodeCost - costLimit));
}

/**
 * The PID Lagrangian of Stooke, Achiam & Abbeel 2020 (Algorithm 2), without its optional smoothing:
 *   delta = J_c - d;  I <- max(0, I + delta);  D = max(0, J_c - J_c,prev)
 *   lambda = max(0, Kp delta + Ki I + Kd D);  J_c,prev <- J_c   (D = 0 on the first update)
 */
export class PidLagrangian {
  integral = 0;
  previousCost: number | null = null;

  constructor(
    readonly kp: number,
    readonly ki: number,
    readonly kd: number,
  ) {}

  update(episodeCost: number, costLimit: number): number {
    const delta = episodeCost - costLimit;
    this.integral = Math.max(0, this.integral + delta);
    const derivative = this.previousCost === null ? 0 : Math.max(0, episodeCost - this.previousCost);
    this.previousCost = episodeCost;
    return Math.max(0, this.kp * delta + this.ki * this.integral + this.kd * derivative);
  }
}

/** The PPO-Lagrangian advantage (Ray et al. 2019): A = (A_r - lambda A_c) / (1 + lambda). */
export function combineAdvantages(reward: Float32Array, cost: Float32Array, lambda: number): Float32Array {
  const out = new Float32Array(reward.length);
  for (let i = 0; i < reward.length; i++) out[i] = (reward[i] - lambda * cost[i]) / (1 + lambda);
  return out;
}

/**
 * Cost advantages when no cost critic is wired: the discounted cost-to-go G^c_t (cut at episode ends,
 * no bootstrap) minus its batch mean, A^c_t = G^c_t - mean(G^c).
 */
export function costToGoAdvantages(
  batch: VectorTrajectories,
  costs: Float32Array,
  gamma: number,
): Float32Array {
  const { numEnvs: n, numSteps: steps, terminated, truncated } = batch;
  const out = new Float32Array(steps * n);
  let total = 0;
  for (let e = 0; e < n; e++) {
    let next = 0;
    for (let t = steps - 1; t >= 0; t--) {
      const i = t * n + e;
      if (terminated[i] || truncated[i]) next = 0;
      next = costs[i] + gamma * next;
      out[i] = next;
      total += next;
    }
  }
  const mean = total / out.length;
  for (let i = 0; i < out.length; i++) out[i] -= mean;
  return out;
}

export default defineNode({
  type: 'safety.lagrangian',
  family: 'safety',
  title: 'Lagrangian constraint',
  summary: 'Constrained RL: learns a cost multiplier lambda and mixes reward and cost advantages.',
  doc: `Constrained policy optimisation by Lagrangian relaxation of a constrained MDP (Altman 1999):

  max_pi J_r(pi)  s.t.  J_c(pi) <= d   ->   min_{lambda >= 0} max_pi J_r(pi) - lambda (J_c(pi) - d)

J_c is the expected episode cost, estimated each iteration as the mean summed cost of the episodes that
ended in the batch (costs of episodes that span iterations are carried over; with no episode ended,
lambda keeps its value). The multiplier is updated first, then used on this batch:
- \`gradient\` (PPO-Lagrangian, Ray, Achiam & Amodei 2019, "Benchmarking Safe Exploration in Deep RL" /
  Safety Gym): lambda <- max(0, lambda + eta (J_c - d));
- \`pid\` (Stooke, Achiam & Abbeel 2020, "Responsive Safety in RL by PID Lagrangian Methods"):
  delta = J_c - d, I <- max(0, I + delta), D = max(0, J_c - J_c,prev),
  lambda = max(0, Kp delta + Ki I + Kd D): the proportional and derivative terms damp the oscillation
  and overshoot of the pure integral (gradient) form.

lambda is capped at \`lambdaMax\`. The policy's advantage is

  A_t = (A^r_t - lambda A^c_t) / (1 + lambda)

(dividing by 1 + lambda keeps the scale of the advantages bounded as lambda grows, as in Safety Gym's
PPO-Lagrangian). A^c comes from the \`costAdvantages\` input (e.g. GAE over a cost critic) or, when it is
not wired, from the discounted cost-to-go minus its batch mean. Return targets pass through from the
reward advantages (for the reward critic).

Needs trajectories with per-step \`costs\` (e.g. \`env.safety-gridworld\`). Metrics: \`lambda\`,
\`episode_cost\` (J_c, the latest estimate), \`constraint_gap\` (J_c - d), \`episodes\`. lambda and the PID state are
checkpointed.`,
  version: 1,
  inputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['vector'] },
      doc: 'Must carry per-step costs.',
    },
    { name: 'rewardAdvantages', type: 'Advantages', title: 'Reward advantages' },
    {
      name: 'costAdvantages',
      type: 'Advantages',
      title: 'Cost advantages',
      required: false,
      doc: 'A^c; without it the node uses the cost-to-go minus its batch mean.',
    },
  ],
  outputs: [{ name: 'advantages', type: 'Advantages', title: 'Advantages' }],
  params: z.object({
    costLimit: z.number().min(0).max(1e6).default(0.05).describe('d: allowed expected cost per episode'),
    mode: z.enum(['gradient', 'pid']).default('gradient').describe('Multiplier update rule'),
    lambdaInit: z.number().min(0).max(1e6).default(0).describe('Initial lambda'),
    lambdaLr: z.number().min(0).max(100).default(0.05).describe('eta: step size of the gradient update'),
    kp: z.number().min(0).max(100).default(0.1).describe('PID: proportional gain'),
    ki: z.number().min(0).max(100).default(0.05).describe('PID: integral gain'),
    kd: z.number().min(0).max(100).default(0.05).describe('PID: derivative gain'),
    lambdaMax: z.number().positive().max(1e6).default(100).describe('Upper bound on lambda'),
    gamma: z.number().min(0).max(1).default(0.99).describe('Discount of the cost-to-go (no cost input)'),
  }),
  keyParams: ['costLimit', 'mode'],
  create(p, ctx) {
    let lambda = p.lambdaInit;
    const pid = new PidLagrangian(p.kp, p.ki, p.kd);
    let runningCost = new Float64Array(0);
    // Shown while an iteration ends no episode, so the metric keys stay the same every iteration.
    let lastEpisodeCost = 0;
    return {
      async step(streams) {
        const batch = streams.trajectories as VectorTrajectories;
        const reward = streams.rewardAdvantages as Advantages;
        const cost = streams.costAdvantages as Advantages | undefined;
        const size = batch.numSteps * batch.numEnvs;
        if (!batch.costs)
          throw new NodeError(
            ctx.nodeId,
            'the trajectories carry no costs; use an environment that reports them (e.g. env.safety-gridworld)',
            'trajectories',
          );
        for (const [field, adv] of [
          ['rewardAdvantages', reward],
          ['costAdvantages', cost],
        ] as const) {
          if (adv && adv.advantages.length !== size)
            throw new NodeError(ctx.nodeId, `${adv.advantages.length} advantages for ${size} steps`, field);
        }
        if (runningCost.length !== batch.numEnvs) runningCost = new Float64Array(batch.numEnvs);

        let episodes = 0;
        let costSum = 0;
        for (let t = 0; t < batch.numSteps; t++) {
          for (let e = 0; e < batch.numEnvs; e++) {
            const i = t * batch.numEnvs + e;
            runningCost[e] += batch.costs[i];
            if (batch.terminated[i] || batch.truncated[i]) {
              costSum += runningCost[e];
              runningCost[e] = 0;
              episodes += 1;
            }
          }
        }
        const episodeCost = episodes > 0 ? costSum / episodes : Number.NaN;
        if (episodes > 0) {
          lastEpisodeCost = episodeCost;
          const next =
            p.mode === 'pid'
              ? pid.update(episodeCost, p.costLimit)
              : lagrangianStep(lambda, episodeCost, p.costLimit, p.lambdaLr);
          lambda = Math.min(p.lambdaMax, next);
        }
        if (!Number.isFinite(lambda)) throw new NonFiniteError(ctx.nodeId, 'lambda');
        const costAdvantages = cost?.advantages ?? costToGoAdvantages(batch, batch.costs, p.gamma);
        const advantages = combineAdvantages(reward.advantages, costAdvantages, lambda);
        return {
          outputs: { advantages: { advantages, returns: reward.returns } satisfies Advantages },
          metrics: {
            lambda,
            episode_cost: lastEpisodeCost,
            constraint_gap: lastEpisodeCost - p.costLimit,
            episodes,
          },
        };
      },
      saveState: () => ({
        json: { lambda, lastEpisodeCost, integral: pid.integral, previousCost: pid.previousCost },
        arrays: { runningCost: runningCost.slice() },
      }),
      loadState(state) {
        const json = state.json as {
          lambda: number;
          lastEpisodeCost: number;
          integral: number;
          previousCost: number | null;
        };
        lambda = json.lambda;
        lastEpisodeCost = json.lastEpisodeCost;
        pid.integral = json.integral;
        pid.previousCost = json.previousCost;
        const saved = state.arrays?.runningCost;
        runningCost = saved ? Float64Array.from(saved) : new Float64Array(0);
      },
    };
  },
});
