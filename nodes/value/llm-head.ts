import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode, NodeError, type Tf } from '../../src-main/engine/node-api.ts';
import {
  isTrainableTextPolicy,
  type TextPolicy,
  type TextValueFunction,
  type TrainableTextPolicy,
} from '../text-contracts.ts';

type Detach = (x: TF.Tensor) => TF.Tensor;
const detachByTf = new WeakMap<Tf, Detach>();

/** The identity with a zero gradient (a stop-gradient: tfjs has no public one). */
export function detach(tf: Tf, x: TF.Tensor): TF.Tensor {
  let op = detachByTf.get(tf);
  if (!op) {
    op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [xi] = inputs as [TF.Tensor];
      return { value: tf.clone(xi), gradFunc: (dy: TF.Tensor) => [tf.zerosLike(dy)] };
    }) as unknown as Detach;
    detachByTf.set(tf, op);
  }
  return op(x);
}

/**
 * V(x_<t) for every target position t of a text policy's token sequences: a small MLP (or a linear map)
 * from the policy's final hidden state at position t-1, the state from which token t is sampled.
 */
export class LlmValueHead implements TextValueFunction {
  readonly kind = 'text' as const;

  constructor(
    private readonly tf: Tf,
    readonly nodeId: string,
    readonly policy: TrainableTextPolicy,
    readonly net: Mlp,
    readonly joinedTrunk: boolean,
  ) {}

  get variables(): TF.Variable[] {
    return this.net.variables;
  }

  valuesFromHidden(hidden: TF.Tensor3D): TF.Tensor2D {
    const tf = this.tf;
    return tf.tidy(() => {
      const [b, t, d] = hidden.shape;
      if (d !== this.net.inputSize) {
        throw new NodeError(this.nodeId, `hidden states of width ${d}, the head reads ${this.net.inputSize}`);
      }
      const features = this.joinedTrunk ? hidden : detach(tf, hidden);
      const flat = tf.reshape(features, [b * t, d]) as TF.Tensor2D;
      return tf.reshape(this.net.apply(flat), [b, t]) as TF.Tensor2D;
    });
  }

  tokenValues(tokens: TF.Tensor2D): TF.Tensor2D {
    const hiddenStates = this.policy.hiddenStates;
    if (!hiddenStates) throw new NodeError(this.nodeId, 'the policy exposes no hidden states', 'policy');
    return this.tf.tidy(() => this.valuesFromHidden(hiddenStates.call(this.policy, tokens)));
  }
}

const params = z.object({
  hidden: z
    .number()
    .int()
    .min(0)
    .max(4096)
    .default(64)
    .describe('Hidden units of the head (0 = a linear head on the hidden states)'),
  activation: z.enum(['tanh', 'relu']).default('tanh').describe('Activation of the hidden layer'),
  outputGain: z
    .number()
    .min(0)
    .max(10)
    .default(0.1)
    .describe('Orthogonal-init gain of the output layer (small: values start near 0)'),
  trunkGradient: z
    .enum(['detached', 'joined'])
    .default('detached')
    .describe(
      "'detached': the value loss trains the head only; 'joined': it also trains the shared transformer",
    ),
});

export default defineNode({
  type: 'value.llm-head',
  family: 'value',
  title: 'Value head (LLM)',
  summary: 'V(prefix) per token: a scalar head on the text agent’s final hidden states, for PPO.',
  doc: `The critic of PPO for language models (Stiennon et al. 2020, "Learning to summarize from human
feedback"; Ouyang et al. 2022, InstructGPT; Huang et al. 2024, "The N+ Implementation Details of RLHF
with PPO", arXiv 2403.17031). Every token the agent writes is an action; the state before token t is the
whole prefix x_<t (prompt, earlier turns, tool replies), and

  V(x_<t) = w_2 . act(W_1 h_{t-1} + b_1) + b_2        (hidden > 0; hidden = 0: V = w . h_{t-1} + b)

where h_{t-1} = LN_f(x_N)_{t-1} is the policy transformer's final hidden state at position t-1 — the same
vector its output head turns into the distribution of token t. Values come out [B, T-1], aligned with
the per-token log-probabilities (position t-1 describes target t); \`credit.token-gae\` reads them on
the agent's tokens and \`trainer.ppo\` fits them to the return targets with the clipped value loss.

**Design: a shared trunk, detached by default.** InstructGPT and Huang et al. train a separate value
network as large as the policy (initialised from the reward model). Here the agent is a small transformer
trained from scratch on the user's machine, so a second trunk would double the cost of every update for
a critic that has no pretrained reward model to start from. The head instead reads the policy's own
hidden states, computed in the same forward pass as the policy's log-probabilities (\`tokenLogProbs(tokens,
true)\`): the critic costs one small MLP per token. With \`trunkGradient = 'detached'\` (default) the
value loss trains only the head (a stop-gradient on h): the policy's features are shaped by the policy
loss alone, so a value loss in reward units (and its early large errors) cannot pull the SFT model's
language features away — the interference between policy and value objectives that a shared trunk
otherwise brings (the reason PPO implementations with shared trunks weight the value loss, and the
reason Huang et al. keep the networks separate). 'joined' lets the value loss train the trunk as well
(the shared actor-critic of Atari PPO), which gives the critic richer features at that risk.

The head is an MLP orthogonally initialised (gain sqrt 2 on the hidden layer, \`outputGain\` on the output,
small so that V starts near 0 and the first advantages are close to the returns). It needs a policy that
exposes its hidden states: \`agent.llm\` (values from the policy's own forward pass) or \`agent.hf-llm\`
(values from a second forward pass through the checkpoint with its adapters). Its weights go into
checkpoints; \`trainer.ppo\` trains it in the same update as the policy, with an Adam of its own
(\`valueLr\`: a head that starts from nothing needs a faster rate than an SFT policy may move at; on
2-digit calculator sums, a head at the policy's 3e-4 still predicted 0.42 on average after 25 iterations
where the mean reward was about 0.5; at 3e-3 it reached it in 3).`,
  version: 1,
  inputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      accepts: { action: ['text'] },
      doc: 'The text agent whose hidden states the head reads (agent.llm).',
    },
  ],
  outputs: [
    {
      name: 'value',
      type: 'ValueFn',
      title: 'Value function',
      provides: { observation: 'text' },
      doc: 'V(x_<t) per token of text episodes (TextValueFunction).',
    },
  ],
  params,
  keyParams: ['hidden', 'trunkGradient'],
  create(p, ctx) {
    const policy = ctx.inputs.policy as TextPolicy | undefined;
    if (!policy || !isTrainableTextPolicy(policy)) {
      throw new NodeError(ctx.nodeId, 'needs a trainable text policy (agent.llm)', 'policy');
    }
    if (typeof policy.hiddenStates !== 'function' || !policy.hiddenSize) {
      throw new NodeError(
        ctx.nodeId,
        `the policy ${policy.nodeId} exposes no hidden states for a value head; use agent.llm`,
        'policy',
      );
    }
    const sizes = p.hidden > 0 ? [policy.hiddenSize, p.hidden, 1] : [policy.hiddenSize, 1];
    const gains = p.hidden > 0 ? [Math.SQRT2, p.outputGain] : [p.outputGain];
    const net = new Mlp(ctx.tf, { sizes, activation: p.activation, gains }, ctx.rng, ctx.nodeId);
    const head = new LlmValueHead(ctx.tf, ctx.nodeId, policy, net, p.trunkGradient === 'joined');
    return {
      components: { value: head },
      saveState: async () => ({ arrays: await net.saveArrays() }),
      loadState: (state) => net.loadArrays(state.arrays ?? {}),
      dispose: () => net.dispose(),
    };
  },
});
