import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { parameterCount } from './llm/model.ts';
import { LlmPolicy } from './llm/policy.ts';

const params = z.object({
  layers: z.number().int().min(1).max(48).default(4).describe('Transformer blocks'),
  width: z.number().int().min(8).max(2048).default(128).describe('Model width d (embedding size)'),
  heads: z.number().int().min(1).max(64).default(4).describe('Attention heads (width must be a multiple)'),
  context: z
    .number()
    .int()
    .min(16)
    .max(4096)
    .default(128)
    .describe('Context length in tokens: prompt, agent turns and tool replies together'),
  activation: z.enum(['gelu', 'relu']).default('gelu').describe('MLP activation'),
  kvCache: z
    .boolean()
    .default(true)
    .describe('Cache keys and values while generating (off recomputes the whole prefix per token)'),
});

export default defineNode({
  type: 'agent.llm',
  family: 'agent',
  title: 'LLM agent (transformer)',
  summary: 'A small decoder-only transformer that writes text, trained here from scratch.',
  doc: `A GPT-style decoder-only transformer (Vaswani et al. 2017, "Attention Is All You Need"; Radford et
al. 2019, GPT-2) written with TensorFlow.js ops, with a character-level tokenizer of its own (printable
ASCII and newline, plus a beginning-of-sequence marker: 97 tokens).

  x_0 = E[tokens] + P[positions]
  per block:  x <- x + W_o softmax(Q K^T / sqrt(d_h) + M_causal) V   with Q, K, V from LayerNorm(x)
              x <- x + W_2 act(W_1 LayerNorm(x) + b_1) + b_2          (MLP 4x wide, GELU or ReLU)
  logits = LayerNorm(x_N) E^T                                         (output head tied to the embedding)

Initialisation as GPT-2: N(0, 0.02), residual projections scaled by 1/sqrt(2 layers). The defaults (4
layers, width 128, 4 heads, context 128) give about 0.8M parameters, the shape of the PyTorch reference
of the speed benchmark.

**Generation** samples all contexts of a call as one batch: prompts are left-padded (padding keys masked,
positions counted from each row's first real token), one prefill computes the prompt's keys and values,
then each new token attends to that **key/value cache** and appends its own, so a token costs the same
however long the prefix (apart from reading the cache), where a re-forward grows with it. Per step the
host reads only the last logits [B, V] and draws tokens from the node's seeded stream with temperature,
top-k and top-p (nucleus sampling, Holtzman et al. 2020); a row stops at a stop string or when its
token budget or the context is used up. Each sampled token comes with log pi(token) under the policy
itself (temperature 1), the pi_old of importance ratios. On the CPU backends (WebAssembly, CPU) the cached
generation runs on the host in WebAssembly SIMD kernels, from weights read once per batch, and in
training passes the whole trunk (embeddings, attention, MLPs, layer norms, forward and backward) is one
host op on two threads: the same math as the tensor path (logits and gradients agree to ~1e-4 relative),
without the per-op cost of ~100 small tensor ops per token.

**Training** reads the log-probability of every token of whole transcripts, log pi(x_t | x_<t) =
log_softmax(logits_{t-1})[x_t], and the entropy of each next-token distribution; trainers pick the agent's
tokens with a mask (prompts and tool replies get no gradient).

**Reference copy**: a frozen copy of the weights for KL penalties (k3 estimator in \`trainer.grpo\`); the
GRPO trainer resets it to the current weights when RL starts (the SFT model). Weights and the reference
are saved with checkpoints.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      provides: { action: 'text' },
      doc: 'A trainable text policy (TrainableTextPolicy).',
    },
  ],
  params,
  keyParams: ['layers', 'width', 'heads', 'context'],
  create(p, ctx) {
    if (p.width % p.heads !== 0) {
      throw new NodeError(ctx.nodeId, `width ${p.width} must be a multiple of heads ${p.heads}`, 'heads');
    }
    const policy = new LlmPolicy(
      ctx.tf,
      ctx.nodeId,
      { layers: p.layers, width: p.width, heads: p.heads, context: p.context, activation: p.activation },
      ctx.rng,
      p.kvCache,
    );
    ctx.log('info', `${parameterCount(policy.model.shape).toLocaleString('en-US')} parameters`);
    return {
      components: { policy },
      saveState: async () => ({
        arrays: { ...(await policy.model.saveArrays('w')), ...(await policy.reference.saveArrays('ref')) },
      }),
      loadState(state) {
        const arrays = state.arrays ?? {};
        policy.model.loadArrays(arrays, 'w');
        policy.reference.loadArrays(arrays, 'ref');
      },
      dispose: () => policy.dispose(),
    };
  },
});
