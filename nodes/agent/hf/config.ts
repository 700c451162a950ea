/**
 * `config.json` of a Hugging Face causal language model, reduced to what the forward pass needs. GPT-2
 * (`GPT2LMHeadModel`) and the Llama family (`LlamaForCausalLM`, `Qwen2ForCausalLM`; SmolLM is a Llama).
 */
import { CheckpointError } from './safetensors.ts';

export type Architecture = 'gpt2' | 'llama';

export interface HfModelConfig {
  architecture: Architecture;
  /** The `architectures[0]` / `model_type` the folder declares. */
  declared: string;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  maxPositions: number;
  normEps: number;
  /** Llama family: RoPE base frequency. */
  ropeTheta: number;
  tieEmbeddings: boolean;
  /** Qwen2 (and Llama with `attention_bias`): biases on the q, k, v projections. */
  qkvBias: boolean;
  /** Llama with `attention_bias`: a bias on the output projection too. */
  outputBias: boolean;
  bosTokenId?: number;
  eosTokenIds: number[];
}

const LLAMA_TYPES = new Set(['llama', 'qwen2', 'smollm']);
const FILE = 'config.json';

function int(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new CheckpointError(
      FILE,
      `field ${key} must be a positive integer (found ${JSON.stringify(value)})`,
    );
  }
  return value;
}

function num(raw: Record<string, unknown>, key: string, fallback: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new CheckpointError(FILE, `field ${key} must be a number (found ${JSON.stringify(value)})`);
  }
  return value;
}

function ids(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

export function parseConfig(raw: unknown): HfModelConfig {
  if (!raw || typeof raw !== 'object') throw new CheckpointError(FILE, 'is not a JSON object');
  const c = raw as Record<string, unknown>;
  const modelType = String(c.model_type ?? '');
  const archList = Array.isArray(c.architectures) ? c.architectures.map(String) : [];
  const declared = archList[0] ?? modelType;
  const bosTokenId = typeof c.bos_token_id === 'number' ? c.bos_token_id : undefined;
  const eosTokenIds = ids(c.eos_token_id);
  if (modelType === 'gpt2' || declared === 'GPT2LMHeadModel') {
    const hidden = int(c, 'n_embd');
    const heads = int(c, 'n_head');
    if (hidden % heads !== 0)
      throw new CheckpointError(FILE, `n_embd ${hidden} is not a multiple of n_head ${heads}`);
    const activation = String(c.activation_function ?? 'gelu_new');
    if (activation !== 'gelu_new') {
      throw new CheckpointError(
        FILE,
        `field activation_function "${activation}" is not supported (gelu_new is)`,
      );
    }
    return {
      architecture: 'gpt2',
      declared,
      vocab: int(c, 'vocab_size'),
      hidden,
      layers: int(c, 'n_layer'),
      heads,
      kvHeads: heads,
      headDim: hidden / heads,
      intermediate: typeof c.n_inner === 'number' ? int(c, 'n_inner') : 4 * hidden,
      maxPositions: int(c, 'n_positions', 1024),
      normEps: num(c, 'layer_norm_epsilon', 1e-5),
      ropeTheta: 0,
      tieEmbeddings: c.tie_word_embeddings !== false,
      qkvBias: true,
      outputBias: true,
      bosTokenId,
      eosTokenIds,
    };
  }
  const llamaArch = /^(Llama|Qwen2|SmolLM)ForCausalLM$/.test(declared);
  if (LLAMA_TYPES.has(modelType) || llamaArch) {
    const hidden = int(c, 'hidden_size');
    const heads = int(c, 'num_attention_heads');
    const kvHeads = int(c, 'num_key_value_heads', heads);
    if (heads % kvHeads !== 0) {
      throw new CheckpointError(
        FILE,
        `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
      );
    }
    const headDim = typeof c.head_dim === 'number' ? int(c, 'head_dim') : hidden / heads;
    if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
      throw new CheckpointError(
        FILE,
        `head dimension ${headDim} must be an even integer (hidden_size / heads)`,
      );
    }
    const activation = String(c.hidden_act ?? 'silu');
    if (activation !== 'silu')
      throw new CheckpointError(FILE, `field hidden_act "${activation}" is not supported (silu is)`);
    const scaling = c.rope_scaling as { rope_type?: string; type?: string } | null | undefined;
    const scalingType = scaling ? (scaling.rope_type ?? scaling.type ?? 'unknown') : 'default';
    if (scalingType !== 'default') {
      throw new CheckpointError(
        FILE,
        `field rope_scaling of type "${scalingType}" is not supported (none is)`,
      );
    }
    if (c.use_sliding_window === true) {
      throw new CheckpointError(FILE, 'field use_sliding_window: sliding-window attention is not supported');
    }
    const isQwen = modelType === 'qwen2' || declared === 'Qwen2ForCausalLM';
    const attentionBias = c.attention_bias === true;
    return {
      architecture: 'llama',
      declared,
      vocab: int(c, 'vocab_size'),
      hidden,
      layers: int(c, 'num_hidden_layers'),
      heads,
      kvHeads,
      headDim,
      intermediate: int(c, 'intermediate_size'),
      maxPositions: int(c, 'max_position_embeddings', 2048),
      normEps: num(c, 'rms_norm_eps', 1e-6),
      ropeTheta: num(c, 'rope_theta', 10000),
      tieEmbeddings: c.tie_word_embeddings === true,
      qkvBias: isQwen || attentionBias,
      outputBias: attentionBias,
      bosTokenId,
      eosTokenIds,
    };
  }
  throw new CheckpointError(
    FILE,
    `architecture "${declared || modelType || 'unknown'}" (model_type "${modelType}") is not supported; supported are GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM (SmolLM)`,
  );
}

/** Parameters of the base model (embeddings counted once when tied). */
export function baseParameterCount(c: HfModelConfig): number {
  const d = c.hidden;
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  let perLayer: number;
  let rest: number;
  if (c.architecture === 'gpt2') {
    perLayer =
      4 * d + d * 3 * d + 3 * d + d * d + d + d * c.intermediate + c.intermediate + c.intermediate * d + d;
    rest = c.vocab * d + c.maxPositions * d + 2 * d;
  } else {
    perLayer =
      2 * d +
      d * qDim +
      2 * d * kvDim +
      qDim * d +
      (c.qkvBias ? qDim + 2 * kvDim : 0) +
      (c.outputBias ? d : 0) +
      3 * d * c.intermediate;
    rest = c.vocab * d + d;
  }
  return c.layers * perLayer + rest + (c.tieEmbeddings ? 0 : c.vocab * d);
}
