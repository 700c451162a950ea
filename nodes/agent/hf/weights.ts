/**
 * From the tensors of a checkpoint (Hugging Face names and layouts) to the model's host weights: every
 * linear map as [in, out] (GPT-2's Conv1D already is; torch Linear [out, in] is transposed), shapes
 * validated against config.json before any tensor is created on the backend.
 */
import type { HfModelConfig } from './config.ts';
import { CheckpointError, type HostTensor } from './safetensors.ts';

export interface HostLinear {
  /** The checkpoint's module name, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  inputs: number;
  outputs: number;
  /** [inputs, outputs], row-major. */
  w: Float32Array;
  b?: Float32Array;
}

export interface HostNorm {
  w: Float32Array;
  b?: Float32Array;
}

export interface HostLayer {
  norm1: HostNorm;
  norm2: HostNorm;
  /** By short module name: GPT-2 `c_attn`, `attn.c_proj`, `c_fc`, `mlp.c_proj`; Llama `q_proj` ... `down_proj`. */
  linears: Record<string, HostLinear>;
}

export interface HostWeights {
  /** [vocab, hidden]. */
  embed: Float32Array;
  /** GPT-2 learned positions [maxPositions, hidden]. */
  positions?: Float32Array;
  layers: HostLayer[];
  finalNorm: HostNorm;
  /** [vocab, hidden] when the head is not tied to the embedding. */
  lmHead?: Float32Array;
}

export const GPT2_MODULES = ['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj'] as const;
export const LLAMA_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;

/** Transpose a row-major [rows, cols] matrix. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

export function hostWeights(
  config: HfModelConfig,
  tensors: Map<string, HostTensor>,
  file: string,
): HostWeights {
  const take = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(file, `tensor ${name} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new CheckpointError(
        file,
        `tensor ${name} has shape [${t.shape.join(', ')}], config.json implies [${shape.join(', ')}]`,
      );
    }
    return t.data;
  };
  const d = config.hidden;
  if (config.architecture === 'gpt2') {
    const p = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
    const conv = (module: string, inputs: number, outputs: number): HostLinear => ({
      module: `${p}${module}`,
      inputs,
      outputs,
      w: take(`${p}${module}.weight`, [inputs, outputs]),
      b: take(`${p}${module}.bias`, [outputs]),
    });
    const layers: HostLayer[] = [];
    for (let i = 0; i < config.layers; i++) {
      const h = `h.${i}`;
      layers.push({
        norm1: { w: take(`${p}${h}.ln_1.weight`, [d]), b: take(`${p}${h}.ln_1.bias`, [d]) },
        norm2: { w: take(`${p}${h}.ln_2.weight`, [d]), b: take(`${p}${h}.ln_2.bias`, [d]) },
        linears: {
          c_attn: conv(`${h}.attn.c_attn`, d, 3 * d),
          'attn.c_proj': conv(`${h}.attn.c_proj`, d, d),
          c_fc: conv(`${h}.mlp.c_fc`, d, config.intermediate),
          'mlp.c_proj': conv(`${h}.mlp.c_proj`, config.intermediate, d),
        },
      });
    }
    return {
      embed: take(`${p}wte.weight`, [config.vocab, d]),
      positions: take(`${p}wpe.weight`, [config.maxPositions, d]),
      layers,
      finalNorm: { w: take(`${p}ln_f.weight`, [d]), b: take(`${p}ln_f.bias`, [d]) },
      lmHead: config.tieEmbeddings ? undefined : take('lm_head.weight', [config.vocab, d]),
    };
  }
  const qDim = config.heads * config.headDim;
  const kvDim = config.kvHeads * config.headDim;
  const linear = (module: string, inputs: number, outputs: number, bias: boolean): HostLinear => ({
    module,
    inputs,
    outputs,
    w: transpose(take(`${module}.weight`, [outputs, inputs]), outputs, inputs),
    b: bias ? take(`${module}.bias`, [outputs]) : undefined,
  });
  const layers: HostLayer[] = [];
  for (let i = 0; i < config.layers; i++) {
    const l = `model.layers.${i}`;
    layers.push({
      norm1: { w: take(`${l}.input_layernorm.weight`, [d]) },
      norm2: { w: take(`${l}.post_attention_layernorm.weight`, [d]) },
      linears: {
        q_proj: linear(`${l}.self_attn.q_proj`, d, qDim, config.qkvBias),
        k_proj: linear(`${l}.self_attn.k_proj`, d, kvDim, config.qkvBias),
        v_proj: linear(`${l}.self_attn.v_proj`, d, kvDim, config.qkvBias),
        o_proj: linear(`${l}.self_attn.o_proj`, qDim, d, config.outputBias),
        gate_proj: linear(`${l}.mlp.gate_proj`, d, config.intermediate, false),
        up_proj: linear(`${l}.mlp.up_proj`, d, config.intermediate, false),
        down_proj: linear(`${l}.mlp.down_proj`, config.intermediate, d, false),
      },
    });
  }
  const embed = take('model.embed_tokens.weight', [config.vocab, d]);
  return {
    embed,
    layers,
    finalNorm: { w: take('model.norm.weight', [d]) },
    lmHead: config.tieEmbeddings ? undefined : take('lm_head.weight', [config.vocab, d]),
  };
}
