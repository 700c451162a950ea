import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode, NodeError, NonFiniteError } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { readCheckpoint } from '../../src-main/engine/runtime/checkpoint.ts';
import type { Advantages, VectorEnv, VectorTrajectories } from '../contracts.ts';
import { computeMonteCarlo } from '../credit/monte-carlo.ts';
import { vectorEpisodeSamples } from '../samples.ts';
import mlpValue from './mlp-value.ts';

/** Where relative checkpoint paths are also looked up: the app's own folder (bundled priors). */
const appRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface ShrinkageStats {
  /** Pooled within-group variance of the returns, sigma^2. */
  returnVariance: number;
  /** Squared error of the prior against the true group mean, tau^2 (bias-corrected, >= 0). */
  priorError: number;
}

export interface ShrinkageResult {
  advantages: Float32Array;
  /** The weight w given to the prior for each step. */
  weights: Float32Array;
  /** This batch's estimates, before smoothing across iterations. */
  batch: ShrinkageStats;
}

/**
 * Groups steps by identical observation (the "prompt" of a group rollout). For each step, the baseline is
 *   b_i = w v(x_i) + (1 - w) mean_{j in group, j != i} G_j,   w = (sigma^2 / m) / (sigma^2 / m + tau^2)
 * with m = group size - 1 (leave-one-out keeps b_i independent of G_i; m = 0 gives w = 1), which is the
 * weight minimising the mean squared error of a convex mix of an estimate with error tau^2 (the prior)
 * and an unbiased mean of m returns with variance sigma^2 / m. A_i = G_i - b_i. `stats` (sigma^2, tau^2)
 * are the running estimates to use; `batch` returns this batch's own, from groups of two or more:
 *   sigma^2 = pooled within-group variance, tau^2 = max(0, mean_g (v_g - mean_g G)^2 - sigma^2 / k_g).
 */
export function shrinkageAdvantages(
  observations: Float32Array,
  observationSize: number,
  returns: Float32Array,
  prior: Float32Array,
  include: Uint8Array,
  stats: ShrinkageStats | null,
): ShrinkageResult {
  const size = returns.length;
  const groups = new Map<string, number[]>();
  for (let i = 0; i < size; i++) {
    if (!include[i]) continue;
    const key = Array.from(observations.subarray(i * observationSize, (i + 1) * observationSize)).join(',');
    const members = groups.get(key);
    if (members) members.push(i);
    else groups.set(key, [i]);
  }
  let within = 0;
  let withinDof = 0;
  let discrepancy = 0;
  let discrepancyGroups = 0;
  const groupSums = new Map<string, number>();
  for (const [key, members] of groups) {
    let sum = 0;
    for (const i of members) sum += returns[i];
    groupSums.set(key, sum);
    const k = members.length;
    if (k < 2) continue;
    const mean = sum / k;
    for (const i of members) within += (returns[i] - mean) ** 2;
    withinDof += k - 1;
    discrepancy += (prior[members[0]] - mean) ** 2;
    discrepancyGroups += 1;
  }
  const sigma2 = withinDof > 0 ? within / withinDof : 0;
  let tau2 = 0;
  if (discrepancyGroups > 0) {
    let noise = 0;
    for (const members of groups.values()) if (members.length >= 2) noise += sigma2 / members.length;
    tau2 = Math.max(0, (discrepancy - noise) / discrepancyGroups);
  }
  const use = stats ?? { returnVariance: sigma2, priorError: tau2 };
  const advantages = new Float32Array(size);
  const weights = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    if (!include[i]) {
      // An episode the batch cut off: its return is partial, the prior alone is the baseline.
      weights[i] = 1;
      advantages[i] = returns[i] - prior[i];
    }
  }
  for (const [key, members] of groups) {
    const m = members.length - 1;
    const sum = groupSums.get(key)!;
    for (const i of members) {
      const noise = m > 0 ? use.returnVariance / m : Number.POSITIVE_INFINITY;
      const w = m === 0 ? 1 : noise + use.priorError > 0 ? noise / (noise + use.priorError) : 0.5;
      const othersMean = m > 0 ? (sum - returns[i]) / m : 0;
      weights[i] = w;
      advantages[i] = returns[i] - (w * prior[i] + (1 - w) * othersMean);
    }
  }
  return { advantages, weights, batch: { returnVariance: sigma2, priorError: tau2 } };
}

/** Steps whose episode ends inside the batch. */
function endedSteps(batch: VectorTrajectories): Uint8Array {
  const n = batch.numEnvs;
  const out = new Uint8Array(batch.numSteps * n);
  for (let e = 0; e < n; e++) {
    let ended = false;
    for (let t = batch.numSteps - 1; t >= 0; t--) {
      const i = t * n + e;
      if (batch.terminated[i] || batch.truncated[i]) ended = true;
      out[i] = ended ? 1 : 0;
    }
  }
  return out;
}

/** Resolve a checkpoint path: absolute, else against the working folder, else against the app folder. */
export function resolvePriorPath(p: string): string {
  if (path.isAbsolute(p)) return p;
  const fromCwd = path.resolve(process.cwd(), p);
  if (existsSync(fromCwd)) return fromCwd;
  return path.resolve(appRoot, p);
}

export default defineNode({
  type: 'value.prior',
  family: 'value',
  title: 'Value prior (frozen, shrinkage baseline)',
  summary: 'A frozen V(s) from an earlier run, fused with the group mean return by MSE-optimal shrinkage.',
  doc: `A generalist value prior for sparse group rollouts, after V_{0.5} (arXiv 2603.10848): a value model
trained in an earlier run is loaded **frozen** from that run's checkpoint and used as the baseline of
Monte-Carlo returns, fused with the empirical mean return of the group by a shrinkage estimator.

Groups are the steps of this batch that share an identical observation (the same start state / prompt).
For step i with return G_i and prior v = V_prior(x_i), among m other members of its group:

  b_i = w v + (1 - w) mean_{j != i} G_j,   w = (sigma^2 / m) / (sigma^2 / m + tau^2),   A_i = G_i - b_i

w minimises the mean squared error of the mix: the group mean has variance sigma^2 / m and the prior a
squared error tau^2. The prior's reliability is measured every batch, sigma^2 as the pooled within-group
variance and tau^2 = max(0, mean_g (v_g - mean_g G)^2 - sigma^2 / k_g) (the observed disagreement minus
what sampling noise explains), both smoothed across iterations with \`decay\`. A reliable prior (tau^2
small) carries small groups; an unreliable one is ignored; a lone step (m = 0) uses the prior alone.
Leave-one-out keeps the baseline independent of G_i, so the policy gradient stays unbiased.

\`checkpoint\` is a run folder (its latest checkpoint is used) or a checkpoint folder of an earlier run;
relative paths are looked up in the working folder, then in the app's folder (where bundled priors live,
e.g. templates/priors/...). \`sourceNode\` names the value.mlp node of that run; its layer sizes come from
the saved graph and must fit this run's observation size. Returns G_t are Monte-Carlo (gamma, cut at
episode ends); the value targets are G_t. Metrics: prior_weight (mean w), prior_error (tau^2),
return_variance (sigma^2), advantage_mean.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'Sets the observation size the prior must accept.',
      accepts: { observation: ['vector'] },
    },
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['vector'] },
    },
  ],
  outputs: [{ name: 'advantages', type: 'Advantages', title: 'Advantages' }],
  params: z.object({
    checkpoint: z
      .string()
      .min(1)
      .default('templates/priors/delayed-effect-value')
      .describe('Run folder or checkpoint folder of the earlier run'),
    sourceNode: z.string().min(1).default('value').describe('Id of the value.mlp node in that run'),
    gamma: z.number().min(0).max(1).default(1).describe('Discount factor of the returns'),
    decay: z
      .number()
      .min(0)
      .max(0.999)
      .default(0.8)
      .describe('Smoothing of the reliability estimates across iterations (0 = this batch only)'),
  }),
  keyParams: ['checkpoint', 'sourceNode'],
  async create(params, ctx) {
    const env = ctx.inputs.env as VectorEnv;
    const where = resolvePriorPath(params.checkpoint);
    if (!existsSync(where)) {
      throw new NodeError(ctx.nodeId, `no run or checkpoint folder at ${where}`, 'checkpoint');
    }
    let snapshot: Awaited<ReturnType<typeof readCheckpoint>>;
    try {
      snapshot = await readCheckpoint(where);
    } catch (error) {
      throw new NodeError(ctx.nodeId, (error as Error).message, 'checkpoint');
    }
    const source = snapshot.graph.nodes.find((n) => n.id === params.sourceNode);
    if (source?.type !== 'value.mlp') {
      const found = snapshot.graph.nodes.filter((n) => n.type === 'value.mlp').map((n) => n.id);
      throw new NodeError(
        ctx.nodeId,
        `the checkpoint's run has no value.mlp node '${params.sourceNode}' (value.mlp nodes: ${found.join(', ') || 'none'})`,
        'sourceNode',
      );
    }
    const arch = mlpValue.params.parse(source.params ?? {});
    const sizes = [env.observationSize, ...arch.hidden, 1];
    const net = new Mlp(
      ctx.tf,
      { sizes, activation: arch.activation, gains: sizes.slice(1).map(() => 1) },
      new Rng(0), // overwritten by the checkpoint's weights
      ctx.nodeId,
    );
    const weights = snapshot.nodes[params.sourceNode]?.state?.arrays ?? {};
    try {
      net.loadArrays(weights as Record<string, ArrayLike<number>>);
    } catch (error) {
      net.dispose();
      throw new NodeError(
        ctx.nodeId,
        `the saved weights of '${params.sourceNode}' do not fit layer sizes ${sizes.join('-')} (this env's observation size ${env.observationSize}): ${(error as Error).message}`,
        'checkpoint',
      );
    }
    let stats: ShrinkageStats | null = null;
    const priorValues = (batch: VectorTrajectories) => {
      const size = batch.numSteps * batch.numEnvs;
      const out = new Float32Array(size);
      net.forwardHost(batch.observations, size, out);
      return out;
    };
    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        const { returns } = computeMonteCarlo(batch, params.gamma, false, 'none');
        const prior = priorValues(batch);
        const include = endedSteps(batch);
        const result = shrinkageAdvantages(
          batch.observations,
          batch.observationSize,
          returns,
          prior,
          include,
          stats,
        );
        const d = params.decay;
        stats = stats
          ? {
              returnVariance: d * stats.returnVariance + (1 - d) * result.batch.returnVariance,
              priorError: d * stats.priorError + (1 - d) * result.batch.priorError,
            }
          : result.batch;
        let weightSum = 0;
        let sum = 0;
        for (let i = 0; i < returns.length; i++) {
          weightSum += result.weights[i];
          sum += result.advantages[i];
        }
        if (!Number.isFinite(sum)) throw new NonFiniteError(ctx.nodeId, 'advantages');
        const credit: Advantages = { advantages: result.advantages, returns };
        return {
          outputs: { advantages: credit },
          metrics: {
            prior_weight: weightSum / returns.length,
            prior_error: stats.priorError,
            return_variance: stats.returnVariance,
            advantage_mean: sum / returns.length,
          },
          samples: vectorEpisodeSamples({ ...batch, values: prior }, credit, ctx.nodeId, info.iteration),
        };
      },
      saveState: () => ({ json: stats ? { ...stats } : null }),
      loadState(state) {
        stats = (state.json as ShrinkageStats | null) ?? null;
      },
      dispose: () => net.dispose(),
    };
  },
});
