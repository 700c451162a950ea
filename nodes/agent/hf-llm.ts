import { totalmem } from 'node:os';
import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { estimateMemory, formatBytes } from './hf/memory.ts';
import { HfPolicy, readHfCheckpoint, resolveLoraTargets } from './hf/policy.ts';
import { CheckpointError } from './hf/safetensors.ts';

const params = z.object({
  modelPath: z
    .string()
    .default('')
    .describe(
      'Folder of a Hugging Face model: config.json, model.safetensors (or shards + index), tokenizer.json',
    ),
  context: z
    .number()
    .int()
    .min(16)
    .max(32768)
    .default(512)
    .describe("Tokens the model reads at most (clipped to the checkpoint's max_position_embeddings)"),
  loraRank: z.number().int().min(1).max(256).default(8).describe('LoRA rank r of each adapter'),
  loraAlpha: z
    .number()
    .min(0.01)
    .max(1024)
    .default(16)
    .describe('LoRA alpha: adapters are scaled by alpha / r'),
  loraTargets: z
    .string()
    .default('q_proj,k_proj,v_proj,o_proj')
    .describe(
      'Comma-separated linear maps that get adapters (Llama names; GPT-2 also takes c_attn, c_fc, c_proj)',
    ),
  chatTemplate: z
    .boolean()
    .default(true)
    .describe("Wrap each episode's prompt in the model's chat template (when tokenizer_config.json has one)"),
  systemPrompt: z
    .string()
    .default('')
    .describe('System message placed before the prompt by the chat template'),
  memoryBatch: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(16)
    .describe('Sequences generated or trained together (group size x prompts), for the memory estimate'),
  memoryBudgetMB: z
    .number()
    .min(0)
    .default(0)
    .describe(
      "Refuse to start above this many MiB (0: the backend's memory: 4 GiB on WebAssembly, RAM otherwise)",
    ),
});

export default defineNode({
  type: 'agent.hf-llm',
  family: 'agent',
  title: 'Open-weight LLM (Hugging Face, LoRA)',
  summary: 'Loads a GPT-2 or Llama-family checkpoint from disk and fine-tunes it with LoRA adapters.',
  doc: `Loads a Hugging Face model folder: \`config.json\`, \`model.safetensors\` (or shards listed in
\`model.safetensors.index.json\`; F32, F16 and BF16 converted to float32), \`tokenizer.json\` with
\`tokenizer_config.json\` (any tokenizer @huggingface/tokenizers reads, byte-level BPE included) and the
chat template in it (rendered with @huggingface/jinja).

**Architectures.** GPT-2 (Radford et al. 2019): learned positions, pre-LayerNorm blocks, fused q/k/v,
GELU (tanh form) MLP, head tied to the embedding. The Llama family (Touvron et al. 2023; Qwen2 and SmolLM
are Llamas): RMSNorm x / sqrt(mean(x^2) + eps) * g, rotary positions (Su et al. 2021; angle
p * theta^(-2i/d_h) with the config's rope_theta, rotate-half layout), grouped-query attention (Ainslie et
al. 2023: each key/value head serves heads/kv_heads query heads), SwiGLU MLP W_down (silu(W_gate x) * W_up x)
(Shazeer 2020), q/k/v biases for Qwen2, tied or separate output head.

**LoRA** (Hu et al. 2021): each chosen linear map becomes y = x W + (alpha / r) (x A) B with A [in, r],
B [r, out]; A ~ U(-1/sqrt(in), 1/sqrt(in)) and B = 0 as PEFT does, so training starts exactly at the base
model. W stays a constant tensor; only A and B are variables, so trainers and their optimiser state see
adapters only. Merging (on export) folds them in: W' = W + (alpha / r) A B.

**Generation**: the prompts of a call are left-padded into one batch; one prefill fills a key/value cache,
then each token costs one cached step. Sampling with temperature, top-k and top-p (Holtzman et al. 2020)
from the node's seeded stream; a row ends at an end-of-sequence token, a stop string (text cut after it)
or its budget. Each token comes with log pi(token) (temperature 1) for importance ratios. An episode's
prompt is wrapped in the chat template as the user's message; later turns continue the assistant's text
with tool replies inline, and the tokens of earlier turns are kept as generated (never re-tokenised).

**Reference copy** for KL penalties: a frozen copy of the adapters over the same base weights.

**Memory** (logged when the node is created): weights (4 bytes per parameter), adapters and their reference,
gradient and two Adam moments per adapter value, the KV cache for \`memoryBatch\` sequences of \`context\`
tokens and the logits of such a training batch. The node refuses to start above the budget.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      provides: { action: 'text' },
      doc: 'A trainable text policy (TrainableTextPolicy) whose variables are the LoRA adapters.',
    },
  ],
  params,
  keyParams: ['modelPath', 'loraRank', 'context'],
  async create(p, ctx) {
    if (!p.modelPath.trim()) throw new NodeError(ctx.nodeId, 'choose a model folder', 'modelPath');
    let checkpoint: Awaited<ReturnType<typeof readHfCheckpoint>>;
    try {
      checkpoint = await readHfCheckpoint(p.modelPath);
    } catch (error) {
      if (error instanceof CheckpointError) {
        throw new NodeError(ctx.nodeId, `${p.modelPath}/${error.message}`, 'modelPath');
      }
      throw error;
    }
    const config = checkpoint.config;
    let targets: string[];
    try {
      targets = resolveLoraTargets(
        config,
        p.loraTargets
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      );
    } catch (error) {
      throw new NodeError(ctx.nodeId, (error as Error).message, 'loraTargets');
    }
    if (targets.length === 0) throw new NodeError(ctx.nodeId, 'name at least one module', 'loraTargets');
    const context = Math.min(p.context, config.maxPositions);
    const estimate = estimateMemory(config, p.loraRank, targets, p.memoryBatch, context);
    const budget =
      p.memoryBudgetMB > 0 ? p.memoryBudgetMB * 2 ** 20 : ctx.run.backend === 'wasm' ? 2 ** 32 : totalmem();
    const summary =
      `${config.declared}: weights ${formatBytes(estimate.weights)}, adapters ${formatBytes(estimate.adapters)}, ` +
      `optimiser ${formatBytes(estimate.optimizer)}, KV cache ${formatBytes(estimate.kvCache)} and logits ` +
      `${formatBytes(estimate.activations)} for ${p.memoryBatch} x ${context} tokens: ${formatBytes(estimate.total)}`;
    ctx.log('info', `memory estimate ${summary}`);
    if (estimate.total > budget) {
      throw new NodeError(
        ctx.nodeId,
        `needs about ${formatBytes(estimate.total)} (${summary}), more than the ${formatBytes(budget)} available on ${ctx.run.backend}; lower memoryBatch, context or loraRank, or use a smaller model`,
        p.memoryBudgetMB > 0 ? 'memoryBudgetMB' : 'modelPath',
      );
    }
    const policy = new HfPolicy(
      ctx.tf,
      ctx.nodeId,
      checkpoint,
      {
        lora: { rank: p.loraRank, alpha: p.loraAlpha, targets },
        context,
        chatTemplate: p.chatTemplate,
        systemPrompt: p.systemPrompt || undefined,
      },
      ctx.rng,
    );
    policy.memoryEstimate = estimate;
    ctx.log(
      'info',
      `${config.declared} loaded from ${p.modelPath}: ${config.layers} layers, hidden ${config.hidden}, ` +
        `${policy.model.adapterParameterCount().toLocaleString('en-US')} trainable adapter values`,
    );
    return {
      components: { policy },
      saveState: async () => ({ arrays: await policy.model.saveArrays() }),
      loadState(state) {
        try {
          policy.model.loadArrays(state.arrays ?? {});
        } catch (error) {
          throw new NodeError(ctx.nodeId, (error as Error).message);
        }
      },
      dispose: () => policy.dispose(),
    };
  },
});
