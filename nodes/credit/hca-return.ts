import { z } from 'zod';
import { defineNode, NodeError, type NodeState, NonFiniteError } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import type { Advantages, DiscretePolicy, VectorTrajectories } from '../contracts.ts';
import { vectorEpisodeSamples } from '../samples.ts';
import {
  classifierAccuracy,
  completeSteps,
  HindsightClassifier,
  HindsightReplay,
  keepRows,
  policyLogProbs,
} from './hindsight-classifier.ts';
import { computeMonteCarlo } from './monte-carlo.ts';

/**
 * Classifier features for step i: the observation, the observation times the scaled return, and the
 * scaled return: [x_t, x_t Z_t / scale, Z_t / scale]. The product lets even a linear h give every (one-hot)
 * state its own return slope, so a state where the action does not matter is not credited like one where
 * it does. The scale is fixed for the run (\`returnScale\`) so that h reads every replayed batch alike.
 */
export function returnFeatures(
  batch: VectorTrajectories,
  returns: Float32Array,
  scale: number,
): Float32Array {
  const size = batch.numSteps * batch.numEnvs;
  const d = batch.observationSize;
  const width = returnFeatureSize(d);
  const features = new Float32Array(size * width);
  for (let i = 0; i < size; i++) {
    const z = returns[i] / scale;
    for (let k = 0; k < d; k++) {
      const x = batch.observations[i * d + k];
      features[i * width + k] = x;
      features[i * width + d + k] = x * z;
    }
    features[i * width + 2 * d] = z;
  }
  return features;
}

export const returnFeatureSize = (observationSize: number) => 2 * observationSize + 1;

/** Root mean square of the returns: the automatic scale, taken from the first batch. */
export function returnRms(returns: Float32Array): number {
  let sq = 0;
  for (const z of returns) sq += z * z;
  return Math.sqrt(sq / Math.max(1, returns.length)) || 1;
}

/**
 * Return-conditioned HCA advantages: A_t = (1 - pi(a_t|x_t) / h(a_t|x_t,Z_t)) Z_t, with h clamped below
 * at `hFloor` so that the ratio stays bounded. `hindsight[i]` is h(a_t|x_t,Z_t) for step i.
 */
export function hcaReturnAdvantages(
  logProbs: Float32Array,
  hindsight: Float32Array,
  returns: Float32Array,
  hFloor: number,
): Float32Array {
  const advantages = new Float32Array(returns.length);
  for (let i = 0; i < returns.length; i++) {
    const ratio = Math.exp(logProbs[i]) / Math.max(hFloor, hindsight[i]);
    advantages[i] = (1 - ratio) * returns[i];
  }
  return advantages;
}

export default defineNode({
  type: 'credit.hca-return',
  family: 'credit',
  title: 'HCA (return-conditioned)',
  summary: 'Hindsight credit: A = (1 − π(a|x)/h(a|x,Z))·Z with a learned hindsight classifier h.',
  doc: `Return-conditioned Hindsight Credit Assignment (Harutyunyan et al., NeurIPS 2019, "Hindsight
Credit Assignment", eq. 5 and Algorithm 2):

  A(x_t, a_t) = (1 - pi(a_t|x_t) / h(a_t|x_t, Z_t)) Z_t,   Z_t = sum_k gamma^k r_{t+k}

h(a|x,Z) is the *hindsight* distribution of the action given the state and the return that followed. If
an action had no influence on the return, knowing Z says nothing about it, h = pi and the step gets no
credit at all (the noise of unrelated rewards is removed); if the return reveals the action, h departs
from pi and the action is credited in proportion.

h is parameterised around the acting policy: h(.|x,Z) = softmax(log pi(.|x) + g(x,Z)), the form Bayes'
rule gives (h(a|x,Z) = pi(a|x) p(Z|x,a) / p(Z|x)), so that h = pi, and the credit is exactly 0, until
the return carries evidence about the action. g is a small MLP (tanh, orthogonal init, near-zero output) trained inside this node every iteration by cross-entropy on
the (x_t, Z_t) -> a_t pairs of the last \`replayBatches\` batches (with the log pi recorded for each), by
Adam over \`epochs\` passes of minibatches. Z enters h divided by a scale fixed for the run (\`returnScale\`, or the RMS return of the first batch). pi(a_t|x_t) is the behaviour probability
recorded by the rollout. h is clamped below at \`hFloor\` to bound the ratio.

Z_t is the Monte-Carlo return-to-go (cut at episode ends, bootstrapped from V at time-limit truncations
when \`bootstrap\` is on); the value targets are Z_t. Steps of an episode that the batch cut off before it
ended have no known return: they get advantage 0 and are left out of h's training. Classifier weights and Adam moments are
checkpointed. The batch is scored by h as trained on the earlier batches and only then used to train h,
so that h never scores returns it has memorised. Metrics: classifier_loss (cross-entropy of the last
epoch), classifier_accuracy (of h on this batch before training on it), ratio_mean (mean of pi/h), advantage_mean.`,
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
    gamma: z.number().min(0).max(1).default(1).describe('Discount factor of the return Z'),
    bootstrap: z.boolean().default(true).describe('Bootstrap Z from V at truncations and at the batch end'),
    hidden: z
      .array(z.number().int().min(1).max(1024))
      .min(0)
      .max(4)
      .default([32])
      .describe('Hidden layer sizes of the hindsight classifier h'),
    lr: z.number().positive().max(1).default(0.01).describe('Adam learning rate of h'),
    epochs: z.number().int().min(1).max(100).default(2).describe('Passes over the replay when training h'),
    replayBatches: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(8)
      .describe('Recent batches h is trained on (1 = this batch only)'),
    minibatchSize: z.number().int().min(1).max(65_536).default(128).describe('Rows per classifier update'),
    returnScale: z
      .number()
      .min(0)
      .max(1e6)
      .default(0)
      .describe('Z is divided by this before it enters h (0 = the RMS return of the first batch)'),
    hFloor: z.number().min(1e-4).max(1).default(0.05).describe('Lower clamp of h(a|x,Z) in the ratio'),
  }),
  keyParams: ['gamma', 'hidden'],
  create(params, ctx) {
    const policy = ctx.inputs.policy as DiscretePolicy;
    let classifier: HindsightClassifier | undefined;
    let replay: HindsightReplay | undefined;
    let scale = 0;
    let pending: NodeState | undefined;
    const replayFor = (batch: VectorTrajectories) => {
      replay ??= new HindsightReplay(
        params.replayBatches,
        returnFeatureSize(batch.observationSize),
        batch.numActions,
      );
      return replay;
    };
    const classifierFor = (batch: VectorTrajectories) => {
      if (!classifier) {
        classifier = new HindsightClassifier(
          ctx.tf,
          returnFeatureSize(batch.observationSize),
          batch.numActions,
          params,
          // Its own stream: built lazily (at the first batch), it must not shift ctx.rng on resume.
          Rng.forStream(ctx.run.seed, `${ctx.nodeId}/hindsight-classifier`),
          ctx.nodeId,
        );
        if (pending) {
          classifier.loadState(pending);
          replayFor(batch).loadArrays(pending.arrays ?? {});
        }
        pending = undefined;
      } else if (classifier.featureSize !== returnFeatureSize(batch.observationSize)) {
        throw new NodeError(ctx.nodeId, 'observation size changed during the run', 'trajectories');
      }
      return classifier;
    };
    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        const size = batch.numSteps * batch.numEnvs;
        const { returns } = computeMonteCarlo(batch, params.gamma, params.bootstrap, 'none');
        scale ||= params.returnScale > 0 ? params.returnScale : returnRms(returns);
        const features = returnFeatures(batch, returns, scale);
        const h = classifierFor(batch);
        // Score the batch with h as trained on earlier batches, then train h on it: a classifier that
        // has seen a step's own return would memorise it and credit noise.
        const logPi = await policyLogProbs(
          ctx.tf,
          policy,
          batch.observations.subarray(0, size * batch.observationSize),
          size,
        );
        const probs = h.probabilities(features, size, logPi);
        const hindsight = new Float32Array(size);
        let ratioSum = 0;
        for (let i = 0; i < size; i++) {
          hindsight[i] = probs[i * batch.numActions + batch.actions[i]];
          ratioSum += Math.exp(batch.logProbs[i]) / Math.max(params.hFloor, hindsight[i]);
        }
        const accuracy = classifierAccuracy(probs, batch.actions, size, batch.numActions);
        const complete = completeSteps(batch);
        const kept = complete.reduce((a, b) => a + b, 0);
        const buffer = replayFor(batch);
        if (kept > 0) {
          buffer.add(
            keepRows(features, returnFeatureSize(batch.observationSize), complete),
            keepRows(batch.actions, 1, complete),
            keepRows(logPi, batch.numActions, complete),
          );
        }
        const rows = buffer.all();
        const fit =
          rows.actions.length > 0
            ? await h.fit(rows.features, rows.actions, rows.actions.length, ctx.rng, rows.baseLogits)
            : { loss: Number.NaN };
        const advantages = hcaReturnAdvantages(batch.logProbs, hindsight, returns, params.hFloor);
        for (let i = 0; i < size; i++) if (!complete[i]) advantages[i] = 0;
        let sum = 0;
        for (const a of advantages) sum += a;
        if (!Number.isFinite(sum)) throw new NonFiniteError(ctx.nodeId, 'advantages');
        const credit: Advantages = { advantages, returns };
        return {
          outputs: { advantages: credit },
          metrics: {
            classifier_loss: fit.loss,
            classifier_accuracy: accuracy,
            ratio_mean: ratioSum / size,
            advantage_mean: sum / size,
          },
          samples: vectorEpisodeSamples(batch, credit, ctx.nodeId, info.iteration),
        };
      },
      async saveState() {
        if (!classifier || !replay) return pending ?? {};
        const state = await classifier.saveState();
        return {
          json: { ...(state.json as object), scale },
          arrays: { ...state.arrays, ...replay.saveArrays() },
        };
      },
      loadState(state) {
        if (!state.arrays || Object.keys(state.arrays).length === 0) return;
        scale = (state.json as { scale: number }).scale;
        if (classifier && replay) {
          classifier.loadState(state);
          replay.loadArrays(state.arrays);
        } else pending = state;
      },
      dispose: () => classifier?.dispose(),
    };
  },
});
