/**
 * PPO on text episodes, the text path of `trainer.ppo` (it dispatches here when its policy is a trainable
 * text policy): the clipped token-level policy loss on the agent's tokens, the clipped value loss of a
 * value head (`value.llm-head`), an optional KL penalty to the reference, epochs of shuffled minibatches
 * of episodes.
 */
import type * as TF from '@tensorflow/tfjs';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import {
  type NodeContext,
  NodeError,
  type NodeInstance,
  NonFiniteError,
  type Tf,
} from '../../src-main/engine/node-api.ts';
import { batchTensors, type PaddedBatch, padBatch, type SequenceForTraining } from '../agent/llm/batch.ts';
import type { GuardVerdict, UpdateGuard } from '../contracts.ts';
import {
  isTextValueFunction,
  type TextAdvantages,
  type TextTrajectories,
  type TextValueFunction,
  type TrainableTextPolicy,
} from '../text-contracts.ts';

export interface TextPpoLossInputs {
  /** log pi_theta of each target token [B, T-1] (differentiable). */
  logProbs: TF.Tensor2D;
  oldLogProbs: TF.Tensor2D;
  advantages: TF.Tensor2D;
  entropy: TF.Tensor2D;
  /** V_theta of each target's state [B, T-1] (differentiable), the old values and the return targets. */
  values: TF.Tensor2D;
  oldValues: TF.Tensor2D;
  returns: TF.Tensor2D;
  /** 1 on agent tokens. */
  mask: TF.Tensor2D;
  /** The reference policy's log-probabilities, when the KL term is on. */
  refLogProbs?: TF.Tensor2D;
}

export interface TextPpoLossOptions {
  clip: number;
  clipValueLoss: boolean;
  entropyCoef: number;
  valueCoef: number;
  klCoef: number;
}

/**
 * Token means over the agent tokens (m = mask, N = sum m):
 *   L_pi = sum m max(-A rho, -A clip(rho, 1 - eps, 1 + eps)) / N,   rho = exp(log pi - log pi_old)
 *   L_V  = 0.5 sum m max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2) / N   (unclipped: (V - R)^2)
 *   H    = sum m H_t / N,   KL = sum m (pi_ref/pi - log(pi_ref/pi) - 1) / N   (k3, when refLogProbs)
 *   loss = L_pi + c_v L_V - c_e H + beta KL
 * Returns [loss, policyLoss, valueLoss, entropy, approxKl, clipFraction, kl, valueClipFraction], approx KL
 * as E[(rho - 1) - log rho].
 */
export function textPpoLoss(tf: Tf, x: TextPpoLossInputs, o: TextPpoLossOptions): TF.Scalar[] {
  const count = tf.maximum(tf.sum(x.mask), 1);
  const tokenMean = (t: TF.Tensor) => tf.div(tf.sum(tf.mul(t, x.mask)), count) as TF.Scalar;
  const logRatio = tf.sub(x.logProbs, x.oldLogProbs);
  const ratio = tf.exp(logRatio);
  const unclipped = tf.mul(tf.neg(x.advantages), ratio);
  const clipped = tf.mul(tf.neg(x.advantages), tf.clipByValue(ratio, 1 - o.clip, 1 + o.clip));
  const policyLoss = tokenMean(tf.maximum(unclipped, clipped));
  const err = tf.square(tf.sub(x.values, x.returns));
  let valueErr: TF.Tensor = err;
  let valueClipFraction = tf.scalar(0);
  if (o.clipValueLoss) {
    const change = tf.sub(x.values, x.oldValues);
    const vClipped = tf.add(x.oldValues, tf.clipByValue(change, -o.clip, o.clip));
    valueErr = tf.maximum(err, tf.square(tf.sub(vClipped, x.returns)));
    valueClipFraction = tokenMean(tf.cast(tf.greater(tf.abs(change), o.clip), 'float32'));
  }
  const valueLoss = tf.mul(0.5, tokenMean(valueErr)) as TF.Scalar;
  const entropy = tokenMean(x.entropy);
  let kl = tf.scalar(0);
  if (x.refLogProbs) {
    const refDiff = tf.sub(x.refLogProbs, x.logProbs);
    kl = tokenMean(tf.sub(tf.sub(tf.exp(refDiff), refDiff), 1));
  }
  const loss = tf.addN([
    policyLoss,
    tf.mul(o.valueCoef, valueLoss),
    tf.mul(-o.entropyCoef, entropy),
    tf.mul(o.klCoef, kl),
  ]) as TF.Scalar;
  const approxKl = tokenMean(tf.sub(tf.sub(ratio, 1), logRatio));
  const clipFraction = tokenMean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), o.clip), 'float32'));
  return [loss, policyLoss, valueLoss, entropy, approxKl, clipFraction, kl, valueClipFraction];
}

/** Whiten the advantages of a padded batch over its agent tokens (zero mean, unbiased unit std). */
export function normaliseMasked(values: Float32Array, mask: Float32Array): void {
  let n = 0;
  let mean = 0;
  for (let i = 0; i < values.length; i++) {
    if (!mask[i]) continue;
    n += 1;
    mean += values[i];
  }
  if (n === 0) return;
  mean /= n;
  let sq = 0;
  for (let i = 0; i < values.length; i++) if (mask[i]) sq += (values[i] - mean) ** 2;
  const std = Math.sqrt(sq / Math.max(1, n - 1));
  for (let i = 0; i < values.length; i++) values[i] = mask[i] ? (values[i] - mean) / (std + 1e-8) : 0;
}

/** The parameters of trainer.ppo that the text path reads. */
export interface TextPpoParams {
  lr: number;
  annealLr: boolean;
  epochs: number;
  minibatches: number;
  clip: number;
  clipValueLoss: boolean;
  entropyCoef: number;
  valueCoef: number;
  maxGradNorm: number;
  normaliseAdvantages: boolean;
  targetKl: number;
  adamEpsilon: number;
  klCoef: number;
  resetReference: boolean;
  valueLr: number;
}

/** The per-iteration figures, in the order the loss returns them (after the loss itself). */
const STAT_NAMES = [
  'policy_loss',
  'value_loss',
  'entropy',
  'approx_kl',
  'clip_fraction',
  'kl',
  'value_clip_fraction',
] as const;

export function createTextPpo(
  p: TextPpoParams,
  ctx: NodeContext,
  policy: TrainableTextPolicy,
  valueInput: unknown,
  guard: UpdateGuard | undefined,
): NodeInstance {
  const tf = ctx.tf;
  if (!isTextValueFunction(valueInput)) {
    throw new NodeError(
      ctx.nodeId,
      'PPO on text needs a value head for text (value.llm-head) on the value input',
      'value',
    );
  }
  const value: TextValueFunction = valueInput;
  if (value.policy !== policy) {
    throw new NodeError(ctx.nodeId, `the value head ${value.nodeId} reads another policy`, 'value');
  }
  const variables = [...policy.variables, ...value.variables];
  const adam = { beta1: 0.9, beta2: 0.999, epsilon: p.adamEpsilon };
  // Two optimisers: the head may learn faster than the policy (it starts from nothing, the policy from SFT).
  const optimiser = new Adam(tf, policy.variables, adam);
  const valueOptimiser = new Adam(tf, value.variables, adam);
  const policyCount = policy.variables.length;
  const lossOptions: TextPpoLossOptions = {
    clip: p.clip,
    clipValueLoss: p.clipValueLoss,
    entropyCoef: p.entropyCoef,
    valueCoef: p.valueCoef,
    klCoef: p.klCoef,
  };
  let started = false;

  /** Loss, gradients and diagnostics of one padded minibatch. */
  const minibatchGradients = (padded: PaddedBatch) =>
    tf.tidy(() => {
      const t = batchTensors(tf, padded);
      const [oldLogProbs, advantages, returns, oldValues] = t.extras;
      const refLogProbs = p.klCoef > 0 ? policy.referenceLogProbs(t.tokens) : undefined;
      let kept: TF.Tensor | undefined;
      const result = tf.variableGrads(() => {
        const scored = policy.tokenLogProbs(t.tokens, true);
        // One forward pass for both where the policy hands out its hidden states with the log-probs.
        const values = scored.hidden ? value.valuesFromHidden(scored.hidden) : value.tokenValues(t.tokens);
        const parts = textPpoLoss(
          tf,
          {
            logProbs: scored.logProbs,
            entropy: scored.entropy,
            oldLogProbs,
            advantages,
            values,
            oldValues,
            returns,
            mask: t.mask,
            refLogProbs,
          },
          lossOptions,
        );
        kept = tf.keep(tf.stack(parts));
        return parts[0];
      }, variables);
      return { grads: variables.map((v) => result.grads[v.name]), stats: kept! };
    });

  return {
    async step(streams, info) {
      const batch = streams.trajectories as TextTrajectories;
      const credit = streams.advantages as TextAdvantages;
      if (batch?.kind !== 'text') {
        throw new NodeError(
          ctx.nodeId,
          'a text policy needs text trajectories (rollout.group)',
          'trajectories',
        );
      }
      if (credit?.kind !== 'text' || !credit.tokenReturns || !credit.tokenValues) {
        throw new NodeError(
          ctx.nodeId,
          'PPO on text needs per-token advantages with return targets (credit.token-gae)',
          'advantages',
        );
      }
      if (batch.episodes.length === 0) return {};
      if (credit.tokenReturns.length !== batch.episodes.length) {
        throw new NodeError(ctx.nodeId, 'advantages and trajectories are of different batches', 'advantages');
      }
      if (!started) {
        started = true;
        if (p.resetReference) policy.resetReference();
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
          extras: [e.logProbs, credit.tokenAdvantages[i], credit.tokenReturns![i], credit.tokenValues![i]],
        };
      });
      const n = sequences.length;
      const size = Math.floor(n / p.minibatches);
      if (size < 1) {
        throw new NodeError(
          ctx.nodeId,
          `more minibatches (${p.minibatches}) than episodes (${n}) per iteration`,
          'minibatches',
        );
      }
      const anneal = p.annealLr ? 1 - info.iteration / info.totalIterations : 1;
      const lr = p.lr * anneal;
      const valueLr = (p.valueLr > 0 ? p.valueLr : p.lr) * anneal;
      const sums = new Float64Array(STAT_NAMES.length + 1);
      let updates = 0;
      let agentTokens = 0;
      let stoppedEarly = 0;
      let guardVerdict: Exclude<GuardVerdict, { action: 'continue' }> | undefined;
      for (let epoch = 0; epoch < p.epochs && !guardVerdict; epoch++) {
        const order = ctx.rng.permutation(n);
        let epochKl = 0;
        let epochUpdates = 0;
        for (let start = 0; start + size <= n; start += size) {
          await ctx.control.point();
          const picked = Array.from(order.subarray(start, start + size), (i) => sequences[i]);
          const padded = padBatch(picked, policy.contextLength);
          if (epoch === 0) agentTokens += padded.agentTokens;
          if (p.normaliseAdvantages) normaliseMasked(padded.extras[1], padded.mask);
          const { grads, stats } = minibatchGradients(padded);
          const values = (await stats.data()) as Float32Array;
          stats.dispose();
          if (!Number.isFinite(values[0])) {
            tf.dispose(grads);
            throw new NonFiniteError(ctx.nodeId, 'policy_loss', `loss ${values[0]}`);
          }
          const norm = await optimiser.apply(grads.slice(0, policyCount), lr, p.maxGradNorm);
          await valueOptimiser.apply(grads.slice(policyCount), valueLr, p.maxGradNorm);
          tf.dispose(grads);
          for (let k = 0; k < STAT_NAMES.length; k++) sums[k] += values[k + 1];
          sums[STAT_NAMES.length] += norm;
          updates += 1;
          epochUpdates += 1;
          epochKl += values[5];
          if (guard) {
            const where = { iteration: info.iteration, epoch, minibatch: epochUpdates - 1 };
            const verdict = guard.afterMinibatch(values[5], where);
            if (verdict.action !== 'continue') {
              guardVerdict = verdict;
              break;
            }
          }
        }
        if (p.targetKl > 0 && epochKl / Math.max(1, epochUpdates) > p.targetKl) {
          stoppedEarly = 1;
          break;
        }
      }
      const metrics: Record<string, number> = {};
      STAT_NAMES.forEach((name, k) => {
        metrics[name] = sums[k] / Math.max(1, updates);
      });
      if (p.klCoef === 0) delete metrics.kl;
      if (!p.clipValueLoss) delete metrics.value_clip_fraction;
      return {
        metrics: {
          ...metrics,
          grad_norm: sums[STAT_NAMES.length] / Math.max(1, updates),
          explained_variance: tokenExplainedVariance(batch, credit),
          lr,
          value_lr: valueLr,
          agent_tokens: agentTokens,
          early_stop: stoppedEarly,
          ...(guard ? { guard_stop: guardVerdict ? 1 : 0 } : {}),
        },
        ...(guardVerdict?.action === 'pause' ? { pause: { reason: guardVerdict.reason } } : {}),
      };
    },
    saveState: () => {
      const valueArrays = Object.entries(valueOptimiser.saveArrays()).map(([k, a]) => [`value/${k}`, a]);
      return {
        json: { step: optimiser.step, valueStep: valueOptimiser.step, started },
        arrays: { ...optimiser.saveArrays(), ...Object.fromEntries(valueArrays) },
      };
    },
    loadState(state) {
      const json = state.json as { step: number; valueStep: number; started: boolean };
      const arrays = state.arrays ?? {};
      const valueArrays: typeof arrays = {};
      const policyArrays: typeof arrays = {};
      for (const [k, a] of Object.entries(arrays)) {
        if (k.startsWith('value/')) valueArrays[k.slice('value/'.length)] = a;
        else policyArrays[k] = a;
      }
      optimiser.loadArrays(policyArrays, json.step);
      valueOptimiser.loadArrays(valueArrays, json.valueStep);
      started = json.started;
    },
    dispose: () => {
      optimiser.dispose();
      valueOptimiser.dispose();
    },
  };
}

/** 1 - Var(R - V_old) / Var(R) over the agent tokens of the batch. */
function tokenExplainedVariance(batch: TextTrajectories, credit: TextAdvantages): number {
  const v: number[] = [];
  const r: number[] = [];
  batch.episodes.forEach((e, i) => {
    e.agentMask!.forEach((m, t) => {
      if (!m) return;
      v.push(credit.tokenValues![i][t]);
      r.push(credit.tokenReturns![i][t]);
    });
  });
  if (r.length === 0) return 0;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = (xs: number[]) => {
    const m = mean(xs);
    return xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length;
  };
  const target = variance(r);
  return target === 0 ? 0 : 1 - variance(r.map((x, k) => x - v[k])) / target;
}
