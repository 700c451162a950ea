import { z } from 'zod';
import { defineNode, NodeError, type NodeState, NonFiniteError } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import type { Advantages, DiscretePolicy, VectorTrajectories } from '../contracts.ts';
import { vectorEpisodeSamples } from '../samples.ts';
import {
  completeSteps,
  HindsightClassifier,
  HindsightReplay,
  policyLogProbs,
} from './hindsight-classifier.ts';
import { computeMonteCarlo } from './monte-carlo.ts';

/** One (step, future state) pair: step s, offset k, and where the state reached after step s + k lies. */
export interface HindsightPair {
  step: number;
  k: number;
  next: number;
}

/**
 * The state reached by the transition of step i (time-major index): the final observation when the
 * episode ended there, else the observation of step i + numEnvs; null past the batch end.
 */
function nextState(batch: VectorTrajectories, i: number): Float32Array | null {
  const d = batch.observationSize;
  if (batch.terminated[i] || batch.truncated[i]) {
    if (!batch.finalObservations) return null;
    return batch.finalObservations.subarray(i * d, (i + 1) * d);
  }
  const j = i + batch.numEnvs;
  if (j >= batch.numSteps * batch.numEnvs) return null;
  return batch.observations.subarray(j * d, (j + 1) * d);
}

/**
 * Every (s, k) pair with k < horizon and s + k in the same episode, for the steps whose episode ends in
 * the batch, with features [x_s, x_{s+k+1}].
 */
export function statePairs(
  batch: VectorTrajectories,
  horizon: number,
): { pairs: HindsightPair[]; features: Float32Array } {
  const n = batch.numEnvs;
  const d = batch.observationSize;
  const complete = completeSteps(batch);
  const pairs: HindsightPair[] = [];
  const rows: Float32Array[] = [];
  for (let t = 0; t < batch.numSteps; t++) {
    for (let e = 0; e < n; e++) {
      const s = t * n + e;
      if (!complete[s]) continue;
      for (let k = 0; k < horizon && t + k < batch.numSteps; k++) {
        const i = (t + k) * n + e;
        const y = nextState(batch, i);
        if (!y) break;
        pairs.push({ step: s, k, next: i });
        rows.push(y);
        if (batch.terminated[i] || batch.truncated[i]) break;
      }
    }
  }
  const features = new Float32Array(pairs.length * 2 * d);
  pairs.forEach((p, r) => {
    features.set(batch.observations.subarray(p.step * d, (p.step + 1) * d), r * 2 * d);
    features.set(rows[r], r * 2 * d + d);
  });
  return { pairs, features };
}

/**
 * State-conditioned HCA advantages for the sampled actions:
 *   A_s = sum_k gamma^k (min(h(a_s|x_s, x_{s+k+1}) / pi(a_s|x_s), maxRatio) - 1) r_{s+k}
 * `hindsight[r]` is h(a_s|x_s, y) for pair r. Steps without pairs get 0.
 */
export function hcaStateAdvantages(
  batch: VectorTrajectories,
  pairs: HindsightPair[],
  hindsight: Float32Array,
  gamma: number,
  maxRatio: number,
): Float32Array {
  const advantages = new Float32Array(batch.numSteps * batch.numEnvs);
  pairs.forEach((p, r) => {
    const pi = Math.exp(batch.logProbs[p.step]);
    const ratio = Math.min(hindsight[r] / pi, maxRatio);
    advantages[p.step] += gamma ** p.k * (ratio - 1) * batch.rewards[p.next];
  });
  return advantages;
}

export default defineNode({
  type: 'credit.hca-state',
  family: 'credit',
  title: 'HCA (state-conditioned)',
  summary: 'Hindsight credit from future states: Σ γ^k (h(a|x,X_k)/π(a|x) − 1) r_k, h a learned classifier.',
  doc: `State-conditioned Hindsight Credit Assignment (Harutyunyan et al., NeurIPS 2019, "Hindsight Credit
Assignment", Theorem 1 and Algorithm 1):

  Q(x,a) = r(x,a) + E[ sum_{k>=1} gamma^k (h_k(a|x,X_k) / pi(a|x)) R_k ]

where h_k(a|x,y) is the probability that a was taken in x given that y was reached k steps later. A
reward is credited to an earlier action by how much reaching the state it came with makes that action
more likely than the policy alone would say. Using the estimator's own value, sum_a pi(a|x) Q(x,a) =
E[sum_k gamma^k R_k] (since sum_a h = 1), as baseline, the advantage of the sampled action is

  A_s = sum_{k>=0} gamma^k (h(a_s|x_s, x_{s+k+1}) / pi(a_s|x_s) - 1) r_{s+k}

with rewards attached to the state their transition reached (x_{s+k+1}, the final observation at an
episode's end), the ratio capped at \`maxRatio\`, and pairs up to \`horizon\` steps apart (later rewards get
no credit). h is parameterised around the policy, h(.|x,y) = softmax(log pi(.|x) + g(x,y)), so it equals pi
(zero credit) until a future state carries evidence about the action; g is a small MLP trained inside the
node by cross-entropy on the (x_s, x_{s+k+1}) -> a_s pairs of the last \`replayBatches\` batches. Each batch is
scored before h trains on it. Steps of episodes the batch cut off are left out. Value targets: the
Monte-Carlo returns. Classifier weights, Adam moments and replay are checkpointed. Metrics:
classifier_loss, pairs, advantage_mean.

Known limitation (differs from the paper's estimator): Theorem 1's Q estimate holds for trajectories
drawn from x under pi, and the paper uses it in the all-actions gradient sum_a grad pi(a|x) Q(x,a)
(= E[sum_k gamma^k R_k sum_a h(a|x,X_k) grad log pi(a|x)]). Here it is used as the advantage of the
sampled action of the same trajectory, whose expectation is not the policy gradient in general, and the
immediate reward is passed through h(a|x, x_{s+1}) instead of being credited as r(x, a): where the next
state carries no evidence of the action (h = pi, e.g. a one-step bandit), the advantage is 0.`,
  version: 1,
  inputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['vector'] },
    },
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      accepts: { action: ['discrete'] },
      doc: 'The acting policy: h is parameterised around its log pi(.|x).',
    },
  ],
  outputs: [{ name: 'advantages', type: 'Advantages', title: 'Advantages' }],
  params: z.object({
    gamma: z.number().min(0).max(1).default(1).describe('Discount factor'),
    horizon: z.number().int().min(1).max(1000).default(16).describe('Largest k of the (s, s + k) pairs'),
    hidden: z
      .array(z.number().int().min(1).max(1024))
      .min(0)
      .max(4)
      .default([32])
      .describe('Hidden layer sizes of the hindsight classifier h'),
    lr: z.number().positive().max(1).default(0.01).describe('Adam learning rate of h'),
    epochs: z.number().int().min(1).max(100).default(1).describe('Passes over the replay when training h'),
    minibatchSize: z.number().int().min(1).max(65_536).default(256).describe('Rows per classifier update'),
    replayBatches: z.number().int().min(1).max(1000).default(4).describe('Recent batches h is trained on'),
    maxRatio: z.number().min(1).max(1000).default(10).describe('Cap of h / pi'),
  }),
  keyParams: ['horizon', 'hidden'],
  create(params, ctx) {
    const policy = ctx.inputs.policy as DiscretePolicy;
    let classifier: HindsightClassifier | undefined;
    let replay: HindsightReplay | undefined;
    let pending: NodeState | undefined;
    const build = (batch: VectorTrajectories) => {
      const featureSize = 2 * batch.observationSize;
      if (!classifier || !replay) {
        classifier = new HindsightClassifier(
          ctx.tf,
          featureSize,
          batch.numActions,
          params,
          Rng.forStream(ctx.run.seed, `${ctx.nodeId}/hindsight-classifier`),
          ctx.nodeId,
        );
        replay = new HindsightReplay(params.replayBatches, featureSize, batch.numActions);
        if (pending) {
          classifier.loadState(pending);
          replay.loadArrays(pending.arrays ?? {});
          pending = undefined;
        }
      } else if (classifier.featureSize !== featureSize) {
        throw new NodeError(ctx.nodeId, 'observation size changed during the run', 'trajectories');
      }
      return { h: classifier, buffer: replay };
    };
    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        if (!batch.finalObservations) {
          throw new NodeError(ctx.nodeId, 'needs the final observation of each episode', 'trajectories');
        }
        const size = batch.numSteps * batch.numEnvs;
        const k = batch.numActions;
        const { h, buffer } = build(batch);
        const { pairs, features } = statePairs(batch, params.horizon);
        const logPi = await policyLogProbs(
          ctx.tf,
          policy,
          batch.observations.subarray(0, size * batch.observationSize),
          size,
        );
        const base = new Float32Array(pairs.length * k);
        const actions = new Int32Array(pairs.length);
        pairs.forEach((p, r) => {
          base.set(logPi.subarray(p.step * k, (p.step + 1) * k), r * k);
          actions[r] = batch.actions[p.step];
        });
        const probs = h.probabilities(features, pairs.length, base);
        const hindsight = new Float32Array(pairs.length);
        for (let r = 0; r < pairs.length; r++) hindsight[r] = probs[r * k + actions[r]];
        const advantages = hcaStateAdvantages(batch, pairs, hindsight, params.gamma, params.maxRatio);
        if (pairs.length > 0) buffer.add(features, actions, base);
        const rows = buffer.all();
        const fit =
          rows.actions.length > 0
            ? await h.fit(rows.features, rows.actions, rows.actions.length, ctx.rng, rows.baseLogits)
            : { loss: Number.NaN };
        const { returns } = computeMonteCarlo(batch, params.gamma, true, 'none');
        let sum = 0;
        for (const a of advantages) sum += a;
        if (!Number.isFinite(sum)) throw new NonFiniteError(ctx.nodeId, 'advantages');
        const credit: Advantages = { advantages, returns };
        return {
          outputs: { advantages: credit },
          metrics: { classifier_loss: fit.loss, pairs: pairs.length, advantage_mean: sum / size },
          samples: vectorEpisodeSamples(batch, credit, ctx.nodeId, info.iteration),
        };
      },
      async saveState() {
        if (!classifier || !replay) return pending ?? {};
        const state = await classifier.saveState();
        return { json: state.json, arrays: { ...state.arrays, ...replay.saveArrays() } };
      },
      loadState(state) {
        if (!state.arrays || Object.keys(state.arrays).length === 0) return;
        if (classifier && replay) {
          classifier.loadState(state);
          replay.loadArrays(state.arrays);
        } else pending = state;
      },
      dispose: () => classifier?.dispose(),
    };
  },
});
