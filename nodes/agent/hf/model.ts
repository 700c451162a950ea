/**
 * The forward pass of a Hugging Face causal LM in TensorFlow.js ops: GPT-2 (LayerNorm, learned positions,
 * fused q/k/v, GELU tanh MLP) and the Llama family (RMSNorm, rotary positions, grouped-query attention,
 * SwiGLU MLP, optional q/k/v biases as in Qwen2), with LoRA adapters on chosen linear maps and a key/value
 * cache for generation. Base weights are plain tensors (never trained); only adapters are tf.Variables.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import type { Rng } from '../../../src-main/engine/rng.ts';
import type { HfModelConfig } from './config.ts';
import type { HostLinear, HostNorm, HostWeights } from './weights.ts';
import { transpose } from './weights.ts';

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Short module names (see weights.ts) that get an adapter. */
  targets: string[];
}

interface Linear {
  module: string;
  inputs: number;
  outputs: number;
  w: TF.Tensor2D;
  b?: TF.Tensor1D;
}

interface Norm {
  w: TF.Tensor1D;
  b?: TF.Tensor1D;
}

interface Layer {
  norm1: Norm;
  norm2: Norm;
  linears: Record<string, Linear>;
}

/** The adapter pair of one linear map: y = x W + (alpha / r) (x A) B, A [in, r], B [r, out]. */
export interface Adapter {
  /** `<layer index>.<short module name>`. */
  key: string;
  a: TF.Tensor2D;
  b: TF.Tensor2D;
}

/** Per layer keys and values [B, kvHeads, S, headDim], and the additive key mask [B, S] on the host. */
export interface KvCache {
  keys: TF.Tensor4D[];
  values: TF.Tensor4D[];
  keyBias: Float32Array;
  length: number;
  batch: number;
}

export function disposeKvCache(cache: KvCache): void {
  for (const t of [...cache.keys, ...cache.values]) t.dispose();
}

/** A trainable variable holding `initial`, which is then freed (the variable keeps its own reference). */
function variableOf(tf: Tf, initial: TF.Tensor, name: string): TF.Variable {
  const v = tf.variable(initial, true, name);
  initial.dispose();
  return v;
}

/** Which adapter set a forward pass uses: the trainable one, the frozen reference copy, or none (base). */
export type AdapterSet = 'policy' | 'reference' | 'base';

export class HfModel {
  private readonly embed: TF.Tensor2D;
  private readonly positionTable?: TF.Tensor2D;
  private readonly layers: Layer[];
  private readonly finalNorm: Norm;
  private readonly lmHead?: TF.Tensor2D;
  /** Trainable adapters, in a fixed order (layer, then target order). */
  readonly adapters: Array<{ key: string; a: TF.Variable; b: TF.Variable }> = [];
  /** The frozen reference copy of the adapters (plain tensors). */
  private reference: Adapter[] = [];
  readonly loraScale: number;

  /**
   * Build the tensors from validated host weights. If creation fails half-way (out of memory), every
   * tensor made so far is freed before the error goes on.
   */
  constructor(
    private readonly tf: Tf,
    readonly config: HfModelConfig,
    host: HostWeights,
    readonly lora: LoraOptions,
    rng: Rng,
    name: string,
  ) {
    this.loraScale = lora.rank > 0 ? lora.alpha / lora.rank : 0;
    const made: TF.Tensor[] = [];
    const keep = <T extends TF.Tensor>(t: T): T => {
      made.push(t);
      return t;
    };
    try {
      const d = config.hidden;
      const norm = (n: HostNorm): Norm => ({
        w: keep(tf.tensor1d(n.w)),
        b: n.b ? keep(tf.tensor1d(n.b)) : undefined,
      });
      const linear = (l: HostLinear): Linear => ({
        module: l.module,
        inputs: l.inputs,
        outputs: l.outputs,
        w: keep(tf.tensor2d(l.w, [l.inputs, l.outputs])),
        b: l.b ? keep(tf.tensor1d(l.b)) : undefined,
      });
      this.embed = keep(tf.tensor2d(host.embed, [config.vocab, d]));
      this.positionTable = host.positions
        ? keep(tf.tensor2d(host.positions, [config.maxPositions, d]))
        : undefined;
      this.lmHead = host.lmHead ? keep(tf.tensor2d(host.lmHead, [config.vocab, d])) : undefined;
      this.finalNorm = norm(host.finalNorm);
      this.layers = host.layers.map((layer) => ({
        norm1: norm(layer.norm1),
        norm2: norm(layer.norm2),
        linears: Object.fromEntries(Object.entries(layer.linears).map(([k, l]) => [k, linear(l)])),
      }));
      if (lora.rank > 0) {
        this.layers.forEach((layer, i) => {
          for (const target of lora.targets) {
            const l = layer.linears[target];
            // PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform, a = sqrt 5), B = 0, so
            // the adapted model starts exactly at the base model.
            const bound = 1 / Math.sqrt(l.inputs);
            const aInit = new Float32Array(l.inputs * lora.rank);
            for (let k = 0; k < aInit.length; k++) aInit[k] = rng.uniform(-bound, bound);
            const a = keep(
              variableOf(tf, tf.tensor2d(aInit, [l.inputs, lora.rank]), `${name}/lora/${i}.${target}/A`),
            );
            const b = keep(variableOf(tf, tf.zeros([lora.rank, l.outputs]), `${name}/lora/${i}.${target}/B`));
            this.adapters.push({ key: `${i}.${target}`, a: a as TF.Variable, b: b as TF.Variable });
          }
        });
      }
      this.resetReference();
      for (const r of this.reference) made.push(r.a, r.b);
    } catch (error) {
      for (const t of made) t.dispose();
      throw error;
    }
  }

  get variables(): TF.Variable[] {
    return this.adapters.flatMap((a) => [a.a, a.b]);
  }

  /** Make the frozen reference adapters equal to the current ones. */
  resetReference(): void {
    for (const r of this.reference) {
      r.a.dispose();
      r.b.dispose();
    }
    this.reference = this.adapters.map((a) => ({
      key: a.key,
      a: this.tf.clone(a.a) as TF.Tensor2D,
      b: this.tf.clone(a.b) as TF.Tensor2D,
    }));
  }

  private adapterFor(set: AdapterSet, layer: number, target: string): Adapter | undefined {
    if (set === 'base') return undefined;
    const key = `${layer}.${target}`;
    const list: Adapter[] = set === 'policy' ? (this.adapters as unknown as Adapter[]) : this.reference;
    return list.find((a) => a.key === key);
  }

  private applyLinear(x: TF.Tensor2D, layer: number, target: string, set: AdapterSet): TF.Tensor2D {
    const tf = this.tf;
    const l = this.layers[layer].linears[target];
    let y: TF.Tensor2D = tf.matMul(x, l.w);
    if (l.b) y = tf.add(y, l.b) as TF.Tensor2D;
    const adapter = this.adapterFor(set, layer, target);
    if (adapter)
      y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, adapter.a), adapter.b), this.loraScale)) as TF.Tensor2D;
    return y;
  }

  private applyNorm(x: TF.Tensor2D, n: Norm): TF.Tensor2D {
    const tf = this.tf;
    const eps = this.config.normEps;
    if (this.config.architecture === 'gpt2') {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
      return tf.add(tf.mul(normed, n.w), n.b as TF.Tensor1D);
    }
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), n.w);
  }

  /** GELU with the tanh approximation (GPT-2's gelu_new). */
  private geluTanh(x: TF.Tensor2D): TF.Tensor2D {
    const tf = this.tf;
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  }

  /** Rotary tables cos, sin [B, T, 1, headDim] for host positions [B * T] (HF's rotate-half layout). */
  private rotary(positions: Int32Array, b: number, t: number): { cos: TF.Tensor4D; sin: TF.Tensor4D } {
    const hd = this.config.headDim;
    const half = hd / 2;
    const cos = new Float32Array(b * t * hd);
    const sin = new Float32Array(b * t * hd);
    for (let i = 0; i < b * t; i++) {
      for (let k = 0; k < half; k++) {
        // Math.fround: torch computes inv_freq and the angle in float32.
        const invFreq = Math.fround(1 / this.config.ropeTheta ** ((2 * k) / hd));
        const a = Math.fround(positions[i] * invFreq);
        cos[i * hd + k] = cos[i * hd + k + half] = Math.cos(a);
        sin[i * hd + k] = sin[i * hd + k + half] = Math.sin(a);
      }
    }
    return {
      cos: this.tf.tensor4d(cos, [b, t, 1, hd]),
      sin: this.tf.tensor4d(sin, [b, t, 1, hd]),
    };
  }

  private rotate(x: TF.Tensor4D, cos: TF.Tensor4D, sin: TF.Tensor4D): TF.Tensor4D {
    const tf = this.tf;
    const half = this.config.headDim / 2;
    const [x1, x2] = tf.split(x, [half, half], 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  }

  /**
   * Hidden states after the final norm for tokens [B, T] at host `positions` [B * T]. With `cache`, the
   * new keys and values are appended to it (the old tensors are disposed, the new ones kept) and
   * attention covers the cached prefix; `keyBias` [B, T] masks padded keys (-1e9) of the new tokens.
   */
  hidden(
    tokens: TF.Tensor2D,
    positions: Int32Array,
    keyBias: Float32Array | undefined,
    set: AdapterSet,
    cache?: KvCache,
  ): TF.Tensor3D {
    const tf = this.tf;
    const c = this.config;
    const [b, t] = tokens.shape;
    const past = cache ? cache.length : 0;
    const total = past + t;
    const g = c.heads / c.kvHeads;
    const hd = c.headDim;
    const d = c.hidden;
    let x = tf.reshape(tf.gather(this.embed, tf.reshape(tokens, [-1])), [b * t, d]) as TF.Tensor2D;
    if (this.positionTable) {
      x = tf.add(x, tf.gather(this.positionTable, tf.tensor1d(positions, 'int32')));
    }
    const rope = c.architecture === 'llama' ? this.rotary(positions, b, t) : undefined;
    // Mask [1, 1, G*T, S]: query i (absolute past + i) sees keys j <= past + i; plus padded keys [B, 1, 1, S].
    const causal = new Float32Array(g * t * total);
    for (let r = 0; r < g; r++)
      for (let i = 0; i < t; i++)
        for (let j = past + i + 1; j < total; j++) causal[(r * t + i) * total + j] = -1e9;
    const fullBias = new Float32Array(b * total);
    for (let row = 0; row < b; row++) {
      if (cache) fullBias.set(cache.keyBias.subarray(row * past, (row + 1) * past), row * total);
      if (keyBias) fullBias.set(keyBias.subarray(row * t, (row + 1) * t), row * total + past);
    }
    const mask = tf.add(tf.tensor4d(causal, [1, 1, g * t, total]), tf.tensor4d(fullBias, [b, 1, 1, total]));
    const scale = 1 / Math.sqrt(hd);
    for (let li = 0; li < this.layers.length; li++) {
      const layer = this.layers[li];
      const h = this.applyNorm(x, layer.norm1);
      let q: TF.Tensor2D;
      let k: TF.Tensor2D;
      let v: TF.Tensor2D;
      if (c.architecture === 'gpt2') {
        [q, k, v] = tf.split(this.applyLinear(h, li, 'c_attn', set), 3, 1) as TF.Tensor2D[];
      } else {
        q = this.applyLinear(h, li, 'q_proj', set);
        k = this.applyLinear(h, li, 'k_proj', set);
        v = this.applyLinear(h, li, 'v_proj', set);
      }
      let q4 = tf.reshape(q, [b, t, c.heads, hd]) as TF.Tensor4D;
      let k4 = tf.reshape(k, [b, t, c.kvHeads, hd]) as TF.Tensor4D;
      if (rope) {
        q4 = this.rotate(q4, rope.cos, rope.sin);
        k4 = this.rotate(k4, rope.cos, rope.sin);
      }
      // Grouped-query attention without repeating K/V: the G query heads of a KV head are stacked on the
      // query axis, [B, Hkv, G*T, hd] x [B, Hkv, S, hd]^T.
      const qg = tf.reshape(tf.transpose(tf.reshape(q4, [b, t, c.kvHeads, g, hd]), [0, 2, 3, 1, 4]), [
        b,
        c.kvHeads,
        g * t,
        hd,
      ]);
      let keys = tf.transpose(k4, [0, 2, 1, 3]) as TF.Tensor4D;
      let values = tf.transpose(tf.reshape(v, [b, t, c.kvHeads, hd]), [0, 2, 1, 3]) as TF.Tensor4D;
      if (cache) {
        if (past > 0) {
          keys = tf.concat([cache.keys[li], keys], 2);
          values = tf.concat([cache.values[li], values], 2);
          cache.keys[li].dispose();
          cache.values[li].dispose();
        }
        cache.keys[li] = tf.keep(keys);
        cache.values[li] = tf.keep(values);
      }
      const scores = tf.add(tf.mul(tf.matMul(qg, keys, false, true), scale), mask);
      const attended = tf.matMul(tf.softmax(scores), values);
      const merged = tf.reshape(
        tf.transpose(tf.reshape(attended, [b, c.kvHeads, g, t, hd]), [0, 3, 1, 2, 4]),
        [b * t, c.heads * hd],
      ) as TF.Tensor2D;
      x = tf.add(x, this.applyLinear(merged, li, c.architecture === 'gpt2' ? 'attn.c_proj' : 'o_proj', set));
      const h2 = this.applyNorm(x, layer.norm2);
      let mlp: TF.Tensor2D;
      if (c.architecture === 'gpt2') {
        mlp = this.applyLinear(this.geluTanh(this.applyLinear(h2, li, 'c_fc', set)), li, 'mlp.c_proj', set);
      } else {
        const gate = this.applyLinear(h2, li, 'gate_proj', set);
        const up = this.applyLinear(h2, li, 'up_proj', set);
        mlp = this.applyLinear(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), li, 'down_proj', set);
      }
      x = tf.add(x, mlp);
    }
    if (cache) {
      cache.keyBias = fullBias;
      cache.length = total;
    }
    return tf.reshape(this.applyNorm(x, this.finalNorm), [b, t, d]) as TF.Tensor3D;
  }

  /** Logits [N, V] of hidden states [N, d] (the head tied to the embedding unless the checkpoint has one). */
  head(hidden: TF.Tensor2D): TF.Tensor2D {
    return this.tf.matMul(hidden, this.lmHead ?? this.embed, false, true);
  }

  /** Logits [B, T, V] of every position. */
  logits(
    tokens: TF.Tensor2D,
    positions: Int32Array,
    keyBias: Float32Array | undefined,
    set: AdapterSet,
  ): TF.Tensor3D {
    const [b, t] = tokens.shape;
    const h = this.hidden(tokens, positions, keyBias, set);
    return this.tf.reshape(this.head(this.tf.reshape(h, [b * t, this.config.hidden])), [
      b,
      t,
      this.config.vocab,
    ]);
  }

  /** Logits [B, V] of the last position of each row, appending to `cache` when given. */
  lastLogits(
    tokens: TF.Tensor2D,
    positions: Int32Array,
    keyBias: Float32Array | undefined,
    set: AdapterSet,
    cache?: KvCache,
  ): TF.Tensor2D {
    const tf = this.tf;
    const [b, t] = tokens.shape;
    const h = this.hidden(tokens, positions, keyBias, set, cache);
    const last = tf.reshape(tf.slice(h, [0, t - 1, 0], [b, 1, this.config.hidden]), [b, this.config.hidden]);
    return this.head(last as TF.Tensor2D);
  }

  emptyCache(batch: number): KvCache {
    return { keys: [], values: [], keyBias: new Float32Array(0), length: 0, batch };
  }

  /** Number of trainable adapter parameters. */
  adapterParameterCount(): number {
    return this.adapters.reduce((s, a) => s + a.a.size + a.b.size, 0);
  }

  /** Adapter and reference values for checkpoints, `lora.<key>.A|B` and `ref.<key>.A|B`. */
  async saveArrays(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    await Promise.all(
      this.adapters.map(async (a, i) => {
        out[`lora.${a.key}.A`] = (await a.a.data()) as Float32Array;
        out[`lora.${a.key}.B`] = (await a.b.data()) as Float32Array;
        out[`ref.${a.key}.A`] = (await this.reference[i].a.data()) as Float32Array;
        out[`ref.${a.key}.B`] = (await this.reference[i].b.data()) as Float32Array;
      }),
    );
    return out;
  }

  /** Restore adapters and reference; every array is checked before anything is assigned. */
  loadArrays(arrays: Record<string, ArrayLike<number>>): void {
    const tf = this.tf;
    const get = (name: string, size: number): Float32Array => {
      const a = arrays[name];
      if (!a || a.length !== size)
        throw new Error(`adapter state ${name}: expected ${size} values, found ${a?.length ?? 'none'}`);
      return Float32Array.from(a);
    };
    const values = this.adapters.map((a) => ({
      a: get(`lora.${a.key}.A`, a.a.size),
      b: get(`lora.${a.key}.B`, a.b.size),
      refA: get(`ref.${a.key}.A`, a.a.size),
      refB: get(`ref.${a.key}.B`, a.b.size),
    }));
    this.adapters.forEach((adapter, i) => {
      tf.tidy(() => {
        adapter.a.assign(tf.tensor2d(values[i].a, adapter.a.shape as [number, number]));
        adapter.b.assign(tf.tensor2d(values[i].b, adapter.b.shape as [number, number]));
      });
      this.reference[i].a.dispose();
      this.reference[i].b.dispose();
      this.reference[i] = {
        key: adapter.key,
        a: tf.tensor2d(values[i].refA, adapter.a.shape as [number, number]),
        b: tf.tensor2d(values[i].refB, adapter.b.shape as [number, number]),
      };
    });
  }

  /**
   * The base weights with the trainable adapters folded in, W' = W + (alpha / r) A B, in the checkpoint's
   * names and layouts (torch Linear [out, in], GPT-2 Conv1D [in, out]), ready to write as safetensors.
   */
  async mergedTensors(): Promise<Record<string, { shape: number[]; data: Float32Array }>> {
    const tf = this.tf;
    const c = this.config;
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    const put = async (name: string, t: TF.Tensor) => {
      out[name] = { shape: t.shape, data: (await t.data()) as Float32Array };
    };
    const gpt2 = c.architecture === 'gpt2';
    const prefix = gpt2
      ? this.layers[0]?.linears.c_attn.module.startsWith('transformer.')
        ? 'transformer.'
        : ''
      : '';
    await put(gpt2 ? `${prefix}wte.weight` : 'model.embed_tokens.weight', this.embed);
    if (this.positionTable) await put(`${prefix}wpe.weight`, this.positionTable);
    if (this.lmHead) await put('lm_head.weight', this.lmHead);
    const putNorm = async (name: string, n: Norm) => {
      await put(`${name}.weight`, n.w);
      if (n.b) await put(`${name}.bias`, n.b);
    };
    await putNorm(gpt2 ? `${prefix}ln_f` : 'model.norm', this.finalNorm);
    for (let li = 0; li < this.layers.length; li++) {
      const layer = this.layers[li];
      await putNorm(gpt2 ? `${prefix}h.${li}.ln_1` : `model.layers.${li}.input_layernorm`, layer.norm1);
      await putNorm(
        gpt2 ? `${prefix}h.${li}.ln_2` : `model.layers.${li}.post_attention_layernorm`,
        layer.norm2,
      );
      for (const [target, l] of Object.entries(layer.linears)) {
        const adapter = this.adapterFor('policy', li, target);
        const merged = adapter
          ? tf.tidy(() => tf.add(l.w, tf.mul(tf.matMul(adapter.a, adapter.b), this.loraScale)))
          : l.w;
        const data = (await merged.data()) as Float32Array;
        if (merged !== l.w) merged.dispose();
        out[`${l.module}.weight`] = gpt2
          ? { shape: [l.inputs, l.outputs], data }
          : { shape: [l.outputs, l.inputs], data: transpose(data, l.inputs, l.outputs) };
        if (l.b) await put(`${l.module}.bias`, l.b);
      }
    }
    return out;
  }

  dispose(): void {
    const all: TF.Tensor[] = [this.embed, this.finalNorm.w];
    if (this.finalNorm.b) all.push(this.finalNorm.b);
    if (this.positionTable) all.push(this.positionTable);
    if (this.lmHead) all.push(this.lmHead);
    for (const layer of this.layers) {
      for (const n of [layer.norm1, layer.norm2]) {
        all.push(n.w);
        if (n.b) all.push(n.b);
      }
      for (const l of Object.values(layer.linears)) {
        all.push(l.w);
        if (l.b) all.push(l.b);
      }
    }
    for (const a of this.adapters) all.push(a.a, a.b);
    for (const r of this.reference) all.push(r.a, r.b);
    for (const t of all) t.dispose();
  }
}
