import { z } from 'zod';
import { defineNode, NonFiniteError } from '../../src-main/engine/node-api.ts';
import type { GuardVerdict, UpdateGuard } from '../contracts.ts';

export interface KlGuardOptions {
  maxKl: number;
  onExceed: 'stop-epoch' | 'pause';
}

/**
 * Stops a trainer's update when the policy moves too far from the one that collected the data. The
 * trainer reports the approx KL of each minibatch; past `maxKl` the guard says stop (or pause).
 */
export class KlGuard implements UpdateGuard {
  /** Updates cut short and pauses asked for, over the run (checkpointed). */
  stops = 0;
  pauses = 0;

  constructor(
    readonly nodeId: string,
    readonly options: KlGuardOptions,
  ) {}

  afterMinibatch(
    approxKl: number,
    where: { iteration: number; epoch: number; minibatch: number },
  ): GuardVerdict {
    if (!Number.isFinite(approxKl)) throw new NonFiniteError(this.nodeId, 'approxKl', `KL = ${approxKl}`);
    if (approxKl <= this.options.maxKl) return { action: 'continue' };
    const reason = `KL to the old policy ${approxKl.toFixed(4)} > limit ${this.options.maxKl} at iteration ${where.iteration}, epoch ${where.epoch}, minibatch ${where.minibatch}`;
    if (this.options.onExceed === 'pause') {
      this.pauses += 1;
      return { action: 'pause', reason };
    }
    this.stops += 1;
    return { action: 'stop', reason };
  }
}

export default defineNode({
  type: 'safety.kl-guard',
  family: 'safety',
  title: 'KL guard',
  summary: 'Stops the update (or pauses the run) when the policy drifts past a KL limit.',
  doc: `A trust-region guard for a trainer's update. Wire its \`guard\` output to the trainer's \`guard\` input
(\`trainer.ppo\`). After every minibatch the trainer passes the approximate KL divergence between the
policy that collected the batch (pi_old) and the current one, measured on that minibatch with Schulman's
k3 estimator (Schulman 2020, "Approximating KL divergence"):

  KL(pi_old || pi_theta) ~ E_{a ~ pi_old}[(r - 1) - log r],  r = pi_theta(a|s) / pi_old(a|s)

(always >= 0, unbiased). When KL > \`maxKl\` the guard acts:
- \`stop-epoch\`: the remaining minibatches and epochs of this update are skipped (the early stopping of
  OpenAI Spinning Up's PPO and of Schulman et al. 2017's "target KL" variants), and training goes on with
  the next batch;
- \`pause\`: the update stops and the run pauses after the iteration for a person to look (headless runs
  stop with a checkpoint) — a guard against a destructive update, e.g. the policy collapse that trust-region
  methods (Schulman et al. 2015, TRPO) are designed to prevent.

The trainer reports \`guard_stop\` (1 when the guard cut the update); the guard keeps counts of its stops
and pauses in checkpoints.`,
  version: 1,
  inputs: [],
  outputs: [{ name: 'guard', type: 'Guard', title: 'Guard' }],
  params: z.object({
    maxKl: z.number().positive().max(100).default(0.05).describe('Approx KL limit per minibatch'),
    onExceed: z
      .enum(['stop-epoch', 'pause'])
      .default('stop-epoch')
      .describe("Past the limit: stop this update's epochs, or pause the run"),
  }),
  keyParams: ['maxKl', 'onExceed'],
  create(p, ctx) {
    const guard = new KlGuard(ctx.nodeId, p);
    return {
      components: { guard },
      saveState: () => ({ json: { stops: guard.stops, pauses: guard.pauses } }),
      loadState(state) {
        const json = state.json as { stops: number; pauses: number };
        guard.stops = json.stops;
        guard.pauses = json.pauses;
      },
    };
  },
});
