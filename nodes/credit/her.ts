import { z } from 'zod';
import { defineNode, NodeError, NonFiniteError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import {
  type Advantages,
  type DiscretePolicy,
  type GoalConditionedEnv,
  isGoalConditionedEnv,
  type ValueFunction,
  type VectorTrajectories,
} from '../contracts.ts';
import { vectorEpisodeSamples } from '../samples.ts';
import { policyLogProbs } from './hindsight-classifier.ts';
import { computeMonteCarlo } from './monte-carlo.ts';

export type HerStrategy = 'final' | 'future';

export interface HerOptions {
  strategy: HerStrategy;
  /** Relabels per transition ('future'); 'final' makes one. */
  relabels: number;
  gamma: number;
  bootstrap: boolean;
}

/**
 * The goal-relabelled copies of a batch, before any network is consulted. Copy j (1..relabels) of env e
 * is column j * numEnvs + e of a batch with numEnvs * (1 + relabels) columns; column j = 0 is the
 * original. For every relabelled row: the observation with its goal replaced, the reward and the
 * reached flag recomputed under that goal, and its return G = sum_k gamma^k r_{t+k} up to the first step
 * that reaches the new goal (terminal) or the end of the episode (then `tailObservations` holds s_end
 * with the new goal, whose V the caller adds times `tailDiscount`).
 */
export interface Relabelled {
  numColumns: number;
  observations: Float32Array;
  rewards: Float32Array;
  reached: Uint8Array;
  /** Return without the bootstrapped tail. */
  partialReturns: Float32Array;
  /** gamma^(steps to the episode end), 0 where the new goal was reached (no tail). */
  tailDiscount: Float32Array;
  tailObservations: Float32Array;
  /** 1 where the relabelled return reached its goal inside the episode. */
  hitGoal: Uint8Array;
}

/** s_{t+1} of row i = t * numEnvs + e: the next row, the episode's final observation, or s_T. */
function nextObservationAt(batch: VectorTrajectories, t: number, e: number): [Float32Array, number] {
  const n = batch.numEnvs;
  const d = batch.observationSize;
  const i = t * n + e;
  if (batch.terminated[i] || batch.truncated[i]) return [batch.finalObservations as Float32Array, i * d];
  if (t + 1 < batch.numSteps) return [batch.observations, (i + n) * d];
  return [batch.lastObservations as Float32Array, e * d];
}

export function relabelGoals(
  batch: VectorTrajectories,
  env: GoalConditionedEnv,
  options: HerOptions,
  rng: Rng,
): Relabelled {
  const { numEnvs: n, numSteps: steps, observationSize: d } = batch;
  const { achievedOffset, goalOffset, size: g } = env.goalSpace;
  const copies = options.strategy === 'final' ? 1 : options.relabels;
  const numColumns = n * (1 + copies);
  const rows = steps * numColumns;
  const out: Relabelled = {
    numColumns,
    observations: new Float32Array(rows * d),
    rewards: new Float32Array(rows),
    reached: new Uint8Array(rows),
    partialReturns: new Float32Array(rows),
    tailDiscount: new Float32Array(rows),
    tailObservations: new Float32Array(rows * d),
    hitGoal: new Uint8Array(rows),
  };
  for (let t = 0; t < steps; t++) {
    for (let e = 0; e < n; e++) {
      const i = t * n + e;
      out.observations.set(batch.observations.subarray(i * d, (i + 1) * d), t * numColumns * d + e * d);
      out.rewards[t * numColumns + e] = batch.rewards[i];
      out.reached[t * numColumns + e] = batch.terminated[i];
    }
  }
  const goal = new Float32Array(g);
  for (let e = 0; e < n; e++) {
    let start = 0;
    while (start < steps) {
      let end = start; // last step of this episode inside the batch
      while (end < steps - 1 && !batch.terminated[end * n + e] && !batch.truncated[end * n + e]) end++;
      for (let t = start; t <= end; t++) {
        for (let j = 1; j <= copies; j++) {
          // 'final': the state the episode ended in; 'future': a state reached at t' in [t, end].
          const from = options.strategy === 'final' ? end : t + rng.int(end - t + 1);
          const [source, at] = nextObservationAt(batch, from, e);
          goal.set(source.subarray(at + achievedOffset, at + achievedOffset + g));
          const row = t * numColumns + j * n + e;
          const obs = out.observations.subarray(row * d, (row + 1) * d);
          obs.set(batch.observations.subarray((t * n + e) * d, (t * n + e + 1) * d));
          obs.set(goal, goalOffset);
          let total = 0;
          let discount = 1;
          let hit = false;
          let last = t;
          for (let s = t; s <= end; s++) {
            const [next, nextAt] = nextObservationAt(batch, s, e);
            const r = env.goalReward(next, nextAt + achievedOffset, goal, 0);
            const reached = env.goalReached(next, nextAt + achievedOffset, goal, 0);
            if (s === t) {
              out.rewards[row] = r;
              out.reached[row] = reached ? 1 : 0;
            }
            total += discount * r;
            discount *= options.gamma;
            last = s;
            if (reached) {
              hit = true;
              break;
            }
          }
          out.partialReturns[row] = total;
          out.hitGoal[row] = hit ? 1 : 0;
          if (!hit && options.bootstrap) {
            // Not terminal under the new goal: bootstrap from V(s_end+1, goal').
            out.tailDiscount[row] = discount;
            const [tail, tailAt] = nextObservationAt(batch, last, e);
            const tailObs = out.tailObservations.subarray(row * d, (row + 1) * d);
            tailObs.set(tail.subarray(tailAt, tailAt + d));
            tailObs.set(goal, goalOffset);
          }
        }
      }
      start = end + 1;
    }
  }
  return out;
}

/** w = min(maxRatio, pi(a | s, g') / mu(a | s, g)): the truncated per-decision importance weight. */
export function importanceWeight(logPiRelabelled: number, logMuBehaviour: number, maxRatio: number): number {
  return Math.min(maxRatio, Math.exp(logPiRelabelled - logMuBehaviour));
}

export default defineNode({
  type: 'credit.her',
  family: 'credit',
  title: 'Hindsight goal relabelling',
  summary: 'HER for on-policy training: relabels goals with achieved ones, importance-weighted advantages.',
  doc: `Hindsight Experience Replay (Andrychowicz et al., NeurIPS 2017) for a goal-conditioned environment
(one that exposes where the achieved and desired goals sit in its observation and its reward r(achieved,
goal), e.g. \`env.bit-flip\`), with the off-policy correction of hindsight policy gradients (Rauber et al.,
ICLR 2019) so that an on-policy trainer (PPO) can learn from the relabelled data.

For every transition (s_t, g, a_t, s_{t+1}) of the iteration's trajectories it makes \`relabels\` copies
with a goal g' taken from what the episode achieved: 'final' uses the state the episode ended in (one
copy), 'future' the achieved state at t' drawn uniformly from [t, end of episode] (k copies). In each
copy the goal part of the observation is replaced by g', and rewards are recomputed with the env's
reward function r_k = r(achieved(s_{k+1}), g'); the relabelled episode ends at the first step that
reaches g' (terminal), otherwise its return is bootstrapped from V(s_end, g'):

  G'_t = sum_{k=t}^{T'} gamma^{k-t} r_k (+ gamma^{T'-t+1} V(s_{T'+1}, g') if g' was not reached)

(Goals drawn from the episode's own states at or after t are always reached, so with 'final' and
'future' the bootstrap term does not arise; it is kept for the general definition.)

Relabelled data is off-policy: the actions were drawn from mu = pi(.|s, g), not pi(.|s, g'). The node
re-evaluates the current policy on the relabelled observations and uses, per decision, the truncated
importance weight (the per-decision form of Rauber et al.'s estimator, truncated as in V-trace, Espeholt
et al. 2018)

  w_t = min(c, pi(a_t | s_t, g') / mu(a_t | s_t, g)),   A'_t = w_t (G'_t - V(s_t, g'))

and stores log pi(a_t | s_t, g') as the rows' log-probabilities, so PPO's ratio starts at 1 and its clip
keeps the update near the policy that w_t was measured against. Only the weight of the action at t is
corrected; the actions after t inside G'_t are not (the product of their weights is the unbiased but
high-variance full form), so the estimate is biased towards the behaviour policy's continuation, a bias
that vanishes as the policy becomes goal-independent on the visited states. The original transitions
keep their Monte-Carlo credit (w = 1).

Outputs: the batch with numEnvs x (1 + copies) columns (copy j of env e is column j numEnvs + e; copy 0
is the original) for the trainer's \`trajectories\` input, and its advantages/returns. Metrics:
relabelled_reached (share of relabelled rows whose return reached g'), weight_mean, weight_clipped.`,
  version: 1,
  inputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['vector'] },
    },
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      accepts: { observation: ['vector'], action: ['discrete'] },
      doc: 'The goal-conditioned environment that collected the trajectories (its reward function).',
    },
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      accepts: { action: ['discrete'] },
      doc: 'The acting policy, re-evaluated under the relabelled goals for the importance weights.',
    },
    {
      name: 'value',
      type: 'ValueFn',
      title: 'Value function',
      required: false,
      doc: 'V(s, g) for the baseline and the bootstrap under relabelled goals (without it both are 0).',
    },
  ],
  outputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Relabelled trajectories',
      provides: { observation: 'vector' },
    },
    { name: 'advantages', type: 'Advantages', title: 'Advantages' },
  ],
  params: z.object({
    strategy: z
      .enum(['final', 'future'])
      .default('future')
      .describe("Where relabelled goals come from: the episode's last state, or a later state of it"),
    relabels: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(4)
      .describe("Relabelled copies per transition ('future')"),
    gamma: z.number().min(0).max(1).default(0.98).describe('Discount factor'),
    bootstrap: z
      .boolean()
      .default(true)
      .describe('Bootstrap from V where the relabelled goal is not reached'),
    maxRatio: z.number().min(1).max(100).default(2).describe('Truncation c of the importance weight'),
  }),
  keyParams: ['strategy', 'relabels'],
  create(params, ctx) {
    const env = ctx.inputs.env as GoalConditionedEnv;
    if (!isGoalConditionedEnv(env)) {
      throw new NodeError(
        ctx.nodeId,
        'the environment is not goal-conditioned (no goalSpace/goalReward)',
        'env',
      );
    }
    const policy = ctx.inputs.policy as DiscretePolicy;
    const value = ctx.inputs.value as ValueFunction | undefined;
    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        if (!batch.finalObservations || !batch.lastObservations) {
          throw new NodeError(
            ctx.nodeId,
            'needs the final and last observations of the batch',
            'trajectories',
          );
        }
        if (batch.observationSize !== env.observationSize) {
          throw new NodeError(ctx.nodeId, 'observation size differs from the environment', 'trajectories');
        }
        const { numEnvs: n, numSteps: steps, observationSize: d } = batch;
        const original = computeMonteCarlo(batch, params.gamma, params.bootstrap, value ? 'value' : 'none');
        const relabelled = relabelGoals(batch, env, params, ctx.rng);
        const columns = relabelled.numColumns;
        const rows = steps * columns;
        const logPi = await policyLogProbs(ctx.tf, policy, relabelled.observations, rows);
        const values = new Float32Array(rows);
        const tailValues = new Float32Array(rows);
        if (value) {
          await value.syncHost();
          value.predictHost(relabelled.observations, rows, values);
          value.predictHost(relabelled.tailObservations, rows, tailValues);
        }
        const out: VectorTrajectories = {
          kind: 'vector',
          numEnvs: columns,
          numSteps: steps,
          observationSize: d,
          numActions: batch.numActions,
          observations: relabelled.observations,
          actions: new Int32Array(rows),
          logProbs: new Float32Array(rows),
          rewards: relabelled.rewards,
          values,
          terminated: relabelled.reached,
          truncated: new Uint8Array(rows),
          truncationValues: new Float32Array(rows),
          lastValues: new Float32Array(columns),
        };
        const advantages = new Float32Array(rows);
        const returns = new Float32Array(rows);
        let weightSum = 0;
        let clipped = 0;
        let reached = 0;
        let relabelledRows = 0;
        for (let t = 0; t < steps; t++) {
          for (let c = 0; c < columns; c++) {
            const row = t * columns + c;
            const e = c % n;
            const i = t * n + e;
            const action = batch.actions[i];
            out.actions[row] = action;
            if (c < n) {
              out.logProbs[row] = batch.logProbs[i];
              values[row] = batch.values[i];
              advantages[row] = original.advantages[i];
              returns[row] = original.returns[i];
              continue;
            }
            const logPiA = logPi[row * batch.numActions + action];
            const w = importanceWeight(logPiA, batch.logProbs[i], params.maxRatio);
            const g = relabelled.partialReturns[row] + relabelled.tailDiscount[row] * tailValues[row];
            out.logProbs[row] = logPiA;
            returns[row] = g;
            advantages[row] = w * (g - values[row]);
            weightSum += w;
            if (w >= params.maxRatio) clipped += 1;
            reached += relabelled.hitGoal[row];
            relabelledRows += 1;
          }
        }
        let sum = 0;
        for (const a of advantages) sum += a;
        if (!Number.isFinite(sum)) throw new NonFiniteError(ctx.nodeId, 'advantages');
        const credit: Advantages = { advantages, returns };
        return {
          outputs: { trajectories: out, advantages: credit },
          metrics: {
            advantage_mean: sum / rows,
            relabelled_reached: reached / Math.max(1, relabelledRows),
            weight_mean: weightSum / Math.max(1, relabelledRows),
            weight_clipped: clipped / Math.max(1, relabelledRows),
          },
          samples: vectorEpisodeSamples(batch, original, ctx.nodeId, info.iteration),
        };
      },
    };
  },
});
