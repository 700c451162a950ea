import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { defineNode, NodeError, NonFiniteError, type Tf } from '../../src-main/engine/node-api.ts';
import { batchTensors, padBatch, type SequenceForTraining } from '../agent/llm/batch.ts';
import {
  isTrainableTextPolicy,
  type TextAdvantages,
  type TextPolicy,
  type TextTrajectories,
  type TrainableTextPolicy,
} from '../text-contracts.ts';

export type LossAggregation = 'token-mean' | 'sequence-mean' | 'constant';

export interface GrpoLossInputs {
  /** log pi_theta of each target token [B, T-1] (differentiable). */
  logProbs: TF.Tensor2D;
  oldLogProbs: TF.Tensor2D;
  refLogProbs: TF.Tensor2D;
  advantages: TF.Tensor2D;
  /** 1 on agent tokens. */
  mask: TF.Tensor2D;
  entropy: TF.Tensor2D;
}

export interface GrpoLossOptions {
  clip: number;
  beta: number;
  aggregation: LossAggregation;
  /** Divisor per sequence of the 'constant' aggregation (Dr. GRPO): the generation budget. */
  constantLength: number;
}

/**
 * Per agent token: l_t = -[min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t) - beta KL_t],
 * rho_t = exp(log pi - log pi_old), KL_t = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1 (k3).
 * Aggregated as 'token-mean' (sum over all agent tokens / their count), 'sequence-mean' (mean over each
 * sequence's tokens, then over sequences: GRPO's 1/G sum_i 1/|o_i| sum_t) or 'constant' (sum / (B x
 * constantLength): Dr. GRPO). Returns [loss, kl, entropy, clipFraction], the diagnostics as token means.
 */
export function grpoLoss(tf: Tf, x: GrpoLossInputs, o: GrpoLossOptions): TF.Scalar[] {
  const ratio = tf.exp(tf.sub(x.logProbs, x.oldLogProbs));
  const unclipped = tf.mul(ratio, x.advantages);
  const clipped = tf.mul(tf.clipByValue(ratio, 1 - o.clip, 1 + o.clip), x.advantages);
  const surrogate = tf.minimum(unclipped, clipped);
  const refDiff = tf.sub(x.refLogProbs, x.logProbs);
  const kl = tf.sub(tf.sub(tf.exp(refDiff), refDiff), 1);
  const perToken = tf.mul(tf.neg(tf.sub(surrogate, tf.mul(kl, o.beta))), x.mask);
  const tokens = tf.maximum(tf.sum(x.mask), 1);
  const b = x.mask.shape[0];
  let loss: TF.Scalar;
  if (o.aggregation === 'token-mean') {
    loss = tf.div(tf.sum(perToken), tokens) as TF.Scalar;
  } else if (o.aggregation === 'sequence-mean') {
    const perSequence = tf.div(tf.sum(perToken, 1), tf.maximum(tf.sum(x.mask, 1), 1));
    loss = tf.mean(perSequence) as TF.Scalar;
  } else {
    loss = tf.div(tf.sum(perToken), b * o.constantLength) as TF.Scalar;
  }
  const tokenMean = (t: TF.Tensor) => tf.div(tf.sum(tf.mul(t, x.mask)), tokens) as TF.Scalar;
  const clipFraction = tokenMean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), o.clip), 'float32'));
  return [loss, tokenMean(kl), tokenMean(x.entropy), clipFraction];
}

const params = z.object({
  lr: z.number().positive().max(1).default(1e-4).describe('Adam learning rate'),
  clip: z.number().positive().max(10).default(0.2).describe('Ratio clip epsilon'),
  beta: z.number().min(0).max(10).default(0.04).describe('KL coefficient to the reference policy'),
  epochs: z.number().int().min(1).max(100).default(1).describe('Passes over each batch (mu)'),
  minibatches: z.number().int().min(1).max(1024).default(2).describe('Minibatches per pass'),
  aggregation: z
    .enum(['token-mean', 'sequence-mean', 'constant'])
    .default('token-mean')
    .describe("Loss over tokens: 'token-mean' (DAPO), 'sequence-mean' (GRPO), 'constant' (Dr. GRPO)"),
  maxGradNorm: z.number().positive().max(1e6).default(1).describe('Global gradient-norm clip'),
  resetReference: z
    .boolean()
    .default(true)
    .describe('Make the reference the current weights when RL starts (the SFT model)'),
});

export default defineNode({
  type: 'trainer.grpo',
  family: 'trainer',
  title: 'GRPO',
  summary: 'Clipped token-level policy gradient with group advantages and a KL penalty to a reference.',
  doc: `Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300), the RL stage of
DeepSeek-R1. For each agent token t of each sampled episode i, with the advantage A_{i,t} from a credit
node (\`credit.grpo\`, \`credit.rloo\`, \`credit.turn-level\`):

  rho_{i,t} = pi_theta(o_{i,t} | o_{i,<t}) / pi_old(o_{i,t} | o_{i,<t})
  l_{i,t}   = -[ min(rho A, clip(rho, 1 - eps, 1 + eps) A) - beta KL_{i,t} ]
  KL_{i,t}  = pi_ref / pi_theta - log(pi_ref / pi_theta) - 1          (Schulman's k3 estimator, >= 0)

Prompt and tool-reply tokens are masked out. Aggregation over tokens: 'sequence-mean' is the paper's
1/G sum_i 1/|o_i| sum_t; 'token-mean' divides by the total number of agent tokens (DAPO, Yu et al. 2025,
arXiv 2503.14476) so long answers are not down-weighted; 'constant' divides by B x the context length, as
Dr. GRPO (Liu et al. 2025, arXiv 2503.20783) recommends, removing the length bias entirely.

pi_old is the sampling policy (log-probabilities recorded at generation); with one epoch and one
minibatch rho = 1 and the update is the plain policy gradient. The reference pi_ref is the agent's frozen
copy; with \`resetReference\` it is set to the current weights the first time this trainer gets episodes
(after an SFT phase: the SFT model). Batches without episodes (before the rollout's \`startIteration\`)
are skipped. Adam on the host with global gradient-norm clipping; its moments go into checkpoints.

Metrics: policy_loss, kl, entropy (per agent token), clip_fraction, grad_norm, lr, agent_tokens.`,
  version: 1,
  inputs: [
    { name: 'policy', type: 'Policy', title: 'Policy', accepts: { action: ['text'] } },
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['text'] },
    },
    { name: 'advantages', type: 'Advantages', title: 'Advantages', accepts: { observation: ['text'] } },
  ],
  outputs: [{ name: 'metrics', type: 'Metrics', title: 'Metrics' }],
  params,
  keyParams: ['lr', 'beta', 'clip', 'aggregation'],
  trains: true,
  create(p, ctx) {
    const tf = ctx.tf;
    const policy = ctx.inputs.policy as TextPolicy;
    if (!policy || !isTrainableTextPolicy(policy)) {
      throw new NodeError(ctx.nodeId, 'needs a trainable policy (agent.llm)', 'policy');
    }
    const trainable: TrainableTextPolicy = policy;
    const optimiser = new Adam(tf, trainable.variables, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    let started = false;

    return {
      async step(streams) {
        const batch = streams.trajectories as TextTrajectories;
        const credit = streams.advantages as TextAdvantages;
        if (batch?.kind !== 'text' || credit?.kind !== 'text') {
          throw new NodeError(ctx.nodeId, 'needs text trajectories and text advantages', 'trajectories');
        }
        if (batch.episodes.length === 0) return {};
        if (!started) {
          started = true;
          if (p.resetReference) trainable.resetReference();
        }
        const sequences: SequenceForTraining[] = batch.episodes.map((e, i) => {
          if (!e.tokens || !e.agentMask || !e.logProbs) {
            throw new NodeError(
              ctx.nodeId,
              'episodes carry no tokens (is the policy agent.llm?)',
              'trajectories',
            );
          }
          return {
            tokens: e.tokens,
            agentMask: e.agentMask,
            extras: [e.logProbs, credit.tokenAdvantages[i]],
          };
        });
        const n = sequences.length;
        const size = Math.max(1, Math.floor(n / p.minibatches));
        const sums = new Float64Array(5);
        let updates = 0;
        let agentTokens = 0;
        for (let epoch = 0; epoch < p.epochs; epoch++) {
          const order = ctx.rng.permutation(n);
          for (let start = 0; start + size <= n; start += size) {
            await ctx.control.point();
            const picked = Array.from(order.subarray(start, start + size), (i) => sequences[i]);
            const padded = padBatch(picked, trainable.contextLength);
            if (epoch === 0) agentTokens += padded.agentTokens;
            const { grads, stats } = tf.tidy(() => {
              const t = batchTensors(tf, padded);
              const refLogProbs = p.beta > 0 ? trainable.referenceLogProbs(t.tokens) : tf.zerosLike(t.mask);
              let kept: TF.Tensor | undefined;
              const result = tf.variableGrads(() => {
                const { logProbs, entropy } = trainable.tokenLogProbs(t.tokens);
                const parts = grpoLoss(
                  tf,
                  {
                    logProbs,
                    entropy,
                    oldLogProbs: t.extras[0],
                    advantages: t.extras[1],
                    refLogProbs: p.beta > 0 ? refLogProbs : logProbs,
                    mask: t.mask,
                  },
                  {
                    clip: p.clip,
                    beta: p.beta,
                    aggregation: p.aggregation,
                    constantLength: trainable.contextLength,
                  },
                );
                kept = tf.keep(tf.stack(parts));
                return parts[0];
              }, trainable.variables);
              return { grads: trainable.variables.map((v) => result.grads[v.name]), stats: kept! };
            });
            const values = (await stats.data()) as Float32Array;
            stats.dispose();
            if (!Number.isFinite(values[0])) {
              tf.dispose(grads);
              throw new NonFiniteError(ctx.nodeId, 'policy_loss', `loss ${values[0]}`);
            }
            const norm = await optimiser.apply(grads, p.lr, p.maxGradNorm);
            tf.dispose(grads);
            for (let k = 0; k < 4; k++) sums[k] += values[k];
            sums[4] += norm;
            updates += 1;
          }
        }
        const mean = (k: number) => sums[k] / Math.max(1, updates);
        return {
          metrics: {
            policy_loss: mean(0),
            kl: mean(1),
            entropy: mean(2),
            clip_fraction: mean(3),
            grad_norm: mean(4),
            lr: p.lr,
            agent_tokens: agentTokens,
          },
        };
      },
      saveState: () => ({ json: { step: optimiser.step, started }, arrays: optimiser.saveArrays() }),
      loadState(state) {
        const json = state.json as { step: number; started: boolean };
        optimiser.loadArrays(state.arrays ?? {}, json.step);
        started = json.started;
      },
      dispose: () => optimiser.dispose(),
    };
  },
});
