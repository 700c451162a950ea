import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import {
  defineNode,
  NodeError,
  type NodeStepResult,
  NonFiniteError,
  type Tf,
} from '../../src-main/engine/node-api.ts';
import { batchTensors, padBatch, type SequenceForTraining } from '../agent/llm/batch.ts';
import {
  isTrainableTextPolicy,
  type TextDemonstration,
  type TextEnv,
  type TextPolicy,
  type TrainableTextPolicy,
} from '../text-contracts.ts';

/** A demonstration as one token sequence: prompt and replies masked out, the agent's turns kept. */
export function demonstrationSequence(
  policy: TrainableTextPolicy,
  demo: TextDemonstration,
): SequenceForTraining {
  const tokens: number[] = [];
  const mask: number[] = [];
  demo.turns.forEach((turn, k) => {
    const ids = policy.encode(turn.text, k === 0);
    for (const id of ids) {
      tokens.push(id);
      mask.push(turn.role === 'agent' ? 1 : 0);
    }
  });
  return { tokens: Int32Array.from(tokens), agentMask: Uint8Array.from(mask) };
}

/** Masked next-token cross-entropy, sum_t m_t (-log pi(x_t | x_<t)) / sum_t m_t, inside the caller's scope. */
export function sftLoss(
  tf: Tf,
  policy: TrainableTextPolicy,
  tokens: TF.Tensor2D,
  mask: TF.Tensor2D,
): TF.Scalar {
  const { logProbs } = policy.tokenLogProbs(tokens, false, false);
  const count = tf.maximum(tf.sum(mask), 1);
  return tf.div(tf.neg(tf.sum(tf.mul(logProbs, mask))), count) as TF.Scalar;
}

const params = z.object({
  iterations: z
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(0)
    .describe('Train during the first N iterations only, then hand over to RL (0 = every iteration)'),
  stepsPerIteration: z.number().int().min(1).max(10_000).default(4).describe('Gradient steps per iteration'),
  batchSize: z.number().int().min(1).max(4096).default(32).describe('Demonstrations per gradient step'),
  datasetSize: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(4000)
    .describe('Demonstrations drawn from the environment once, at the start'),
  lr: z.number().positive().max(1).default(1e-3).describe('Adam learning rate'),
  decayLr: z.boolean().default(true).describe('Decay the learning rate linearly to 10% over the SFT phase'),
  maxGradNorm: z.number().positive().max(1e6).default(1).describe('Global gradient-norm clip'),
});

export default defineNode({
  type: 'trainer.sft',
  family: 'trainer',
  title: 'Supervised fine-tuning',
  summary: 'Next-token cross-entropy on demonstrations, on the agent’s tokens only.',
  doc: `Supervised fine-tuning (behaviour cloning of demonstrations), the first stage of the InstructGPT
recipe (Ouyang et al. 2022) and of DeepSeek-R1's cold start (DeepSeek-AI 2025): maximise the likelihood of
the demonstrated agent turns,

  L = - sum_{e, t} m_{e,t} log pi(x_{e,t} | x_{e,<t}) / sum_{e, t} m_{e,t},

where m is 1 on the agent's tokens and 0 on the prompt and on tool replies (the model is conditioned on
them but not trained to write them). The demonstrations come from the environment (\`datasetSize\` of
them, drawn once); they may contain flawed examples, which the model imitates in proportion — RL
afterwards is what removes them.

**Phases**: with \`iterations\` = N the trainer works during the first N iterations and then stays idle,
so that one graph runs SFT and then RL on the same agent (set the rollout's \`startIteration\` to N too).
Adam (host-side, with global norm clipping) with its moments saved in checkpoints; the learning rate
decays linearly to 10% over the phase when \`decayLr\` is on.

Metrics: sft_loss (nats per agent token), grad_norm, lr, active (1 during the SFT phase).`,
  version: 1,
  inputs: [
    { name: 'policy', type: 'Policy', title: 'Policy', accepts: { action: ['text'] } },
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'Writes the demonstrations.',
      accepts: { observation: ['text'], action: ['text'] },
    },
  ],
  outputs: [{ name: 'metrics', type: 'Metrics', title: 'Metrics' }],
  params,
  keyParams: ['iterations', 'batchSize', 'lr'],
  trains: true,
  create(p, ctx) {
    const tf = ctx.tf;
    const policy = ctx.inputs.policy as TextPolicy;
    const env = ctx.inputs.env as TextEnv;
    if (!policy || !isTrainableTextPolicy(policy)) {
      throw new NodeError(ctx.nodeId, 'needs a trainable policy (agent.llm)', 'policy');
    }
    if (typeof env?.demonstrations !== 'function') {
      throw new NodeError(ctx.nodeId, 'this environment cannot write demonstrations', 'env');
    }
    const data = env.demonstrations(p.datasetSize, ctx.rng.fork('demonstrations'));
    const sequences = data.map((d) => demonstrationSequence(policy, d));
    const optimiser = new Adam(tf, policy.variables, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });

    return {
      async step(_streams, info): Promise<NodeStepResult> {
        const phase = p.iterations > 0 ? p.iterations : info.totalIterations;
        if (info.iteration >= phase) return { metrics: { active: 0 } };
        const lr = p.decayLr ? p.lr * (1 - 0.9 * (info.iteration / phase)) : p.lr;
        let lossSum = 0;
        let normSum = 0;
        for (let s = 0; s < p.stepsPerIteration; s++) {
          await ctx.control.point();
          const picked: SequenceForTraining[] = [];
          for (let k = 0; k < p.batchSize; k++) picked.push(sequences[ctx.rng.int(sequences.length)]);
          const batch = padBatch(picked, policy.contextLength);
          const { grads, loss } = tf.tidy(() => {
            const t = batchTensors(tf, batch);
            const result = tf.variableGrads(() => sftLoss(tf, policy, t.tokens, t.mask), policy.variables);
            return { grads: policy.variables.map((v) => result.grads[v.name]), loss: result.value };
          });
          const value = (await loss.data())[0];
          loss.dispose();
          if (!Number.isFinite(value)) {
            tf.dispose(grads);
            throw new NonFiniteError(ctx.nodeId, 'sft_loss', `loss ${value}`);
          }
          normSum += await optimiser.apply(grads, lr, p.maxGradNorm);
          tf.dispose(grads);
          lossSum += value;
        }
        return {
          metrics: {
            sft_loss: lossSum / p.stepsPerIteration,
            grad_norm: normSum / p.stepsPerIteration,
            lr,
            active: 1,
          },
        };
      },
      saveState: () => ({ json: { step: optimiser.step }, arrays: optimiser.saveArrays() }),
      loadState(state) {
        optimiser.loadArrays(state.arrays ?? {}, (state.json as { step: number }).step);
      },
      dispose: () => optimiser.dispose(),
    };
  },
});
