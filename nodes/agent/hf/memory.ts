/**
 * What a Hugging Face model will hold in backend memory, in bytes, before anything is allocated: base
 * weights (float32 on the backend whatever the file's dtype), LoRA adapters and their frozen reference
 * copy, Adam's two moments and one gradient per adapter value, the key/value cache of a generation batch,
 * and the logits of a training batch (log-softmax and its gradient: three [B, T, V] float32 buffers).
 */
import { baseParameterCount, type HfModelConfig } from './config.ts';

export interface MemoryEstimate {
  weights: number;
  adapters: number;
  optimizer: number;
  kvCache: number;
  activations: number;
  total: number;
}

/** Input and output widths of a short module name. */
export function moduleShape(c: HfModelConfig, module: string): [number, number] {
  const d = c.hidden;
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const shapes: Record<string, [number, number]> = {
    c_attn: [d, 3 * d],
    'attn.c_proj': [d, d],
    c_fc: [d, c.intermediate],
    'mlp.c_proj': [c.intermediate, d],
    q_proj: [d, q],
    k_proj: [d, kv],
    v_proj: [d, kv],
    o_proj: [q, d],
    gate_proj: [d, c.intermediate],
    up_proj: [d, c.intermediate],
    down_proj: [c.intermediate, d],
  };
  return shapes[module];
}

export function adapterParameterCount(c: HfModelConfig, rank: number, targets: string[]): number {
  return c.layers * targets.reduce((s, t) => s + rank * moduleShape(c, t).reduce((a, b) => a + b, 0), 0);
}

export function estimateMemory(
  c: HfModelConfig,
  rank: number,
  targets: string[],
  batch: number,
  tokens: number,
): MemoryEstimate {
  const f = 4;
  const adapterValues = adapterParameterCount(c, rank, targets);
  const weights = baseParameterCount(c) * f;
  const adapters = 2 * adapterValues * f;
  const optimizer = 3 * adapterValues * f;
  const kvCache = 2 * c.layers * c.kvHeads * c.headDim * batch * tokens * f;
  const activations = 3 * batch * tokens * c.vocab * f;
  return {
    weights,
    adapters,
    optimizer,
    kvCache,
    activations,
    total: weights + adapters + optimizer + kvCache + activations,
  };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
