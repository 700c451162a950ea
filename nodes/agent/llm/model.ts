/**
 * A decoder-only transformer (GPT-2 layout, Radford et al. 2019) in TensorFlow.js ops: token + learned
 * position embeddings, N pre-norm blocks of causal multi-head self-attention and a 4x MLP, a final layer
 * norm and an output head tied to the token embedding. The same shape as the PyTorch reference
 * (`transformer_tokens_torch.py`).
 *
 *   x_0 = E[tokens] + P[positions]
 *   x' = x + W_o Attn(LN_1(x)),  Attn = softmax(Q K^T / sqrt(d_h) + M) V   (M: causal and padding mask)
 *   x'' = x' + W_2 act(W_1 LN_2(x') + b_1) + b_2
 *   logits = LN_f(x_N) E^T
 *
 * Two ways to run it: `forward` over whole right-padded sequences (training, scoring), and `prefill` +
 * `decode` with a key/value cache for generation, where each new token attends to the cached keys and
 * values of the prefix instead of recomputing them (per-token cost independent of the prefix except for
 * the attention read itself). Embedding look-ups are one-hot matrix products: the WebAssembly backend has
 * no kernel for the gradient of `gather`, and with a vocabulary of ~100 the product is cheap.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import type { Rng } from '../../../src-main/engine/rng.ts';
import { LN_EPS } from './host-rows.ts';
import { BLOCK_KEYS, HostTrunk, hostTokenLogProbs, hostTrunk, hostTrunkAvailable } from './host-trunk.ts';

export interface TransformerShape {
  vocab: number;
  context: number;
  width: number;
  heads: number;
  layers: number;
  activation: 'gelu' | 'relu';
}

interface BlockWeights {
  ln1g: TF.Variable;
  ln1b: TF.Variable;
  wqkv: TF.Variable;
  bqkv: TF.Variable;
  wo: TF.Variable;
  bo: TF.Variable;
  ln2g: TF.Variable;
  ln2b: TF.Variable;
  w1: TF.Variable;
  b1: TF.Variable;
  w2: TF.Variable;
  b2: TF.Variable;
}

/** Every weight read back to the host (for `HostDecoder`); the layouts of the variables. */
export interface TransformerWeights {
  tokEmb: Float32Array;
  posEmb: Float32Array;
  blocks: Record<keyof BlockWeights, Float32Array>[];
  lnfg: Float32Array;
  lnfb: Float32Array;
}

/** Keys and values of every layer for the sequence so far, plus the additive padding mask of its keys. */
export interface KvCache {
  keys: TF.Tensor4D[];
  values: TF.Tensor4D[];
  /** [B, 1, 1, t]: 0 for real tokens, -1e9 for left padding. */
  keyBias: TF.Tensor4D;
  length: number;
}

const NEG = -1e9;

export function parameterCount(s: TransformerShape): number {
  const d = s.width;
  const block = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d);
  return s.vocab * d + s.context * d + s.layers * block + 2 * d;
}

export class Transformer {
  readonly variables: TF.Variable[] = [];
  private readonly tokEmb: TF.Variable;
  private readonly posEmb: TF.Variable;
  private readonly blocks: BlockWeights[] = [];
  private readonly lnfg: TF.Variable;
  private readonly lnfb: TF.Variable;
  readonly headSize: number;
  /**
   * How `forward` runs the trunk: 'host' as one host-kernel op on the CPU backends (host-trunk.ts; tensor
   * ops elsewhere), 'tensor' always as tensor ops (the reference the host op is tested against).
   */
  trunkKernels: 'host' | 'tensor' = 'host';
  private host?: HostTrunk;

  constructor(
    private readonly tf: Tf,
    readonly shape: TransformerShape,
    rng: Rng,
    name: string,
    trainable = true,
  ) {
    const { vocab, context, width: d, layers } = shape;
    if (d % shape.heads !== 0) throw new Error(`width ${d} is not a multiple of heads ${shape.heads}`);
    this.headSize = d / shape.heads;
    let counter = 0;
    const make = (dims: number[], init: 'normal' | 'zeros' | 'ones', std = 0.02) => {
      const size = dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (init === 'ones') data.fill(1);
      else if (init === 'normal') for (let i = 0; i < size; i++) data[i] = std * rng.normal();
      const t = tf.tensor(data, dims);
      const v = tf.variable(t, trainable, `${name}/${counter++}`);
      t.dispose();
      this.variables.push(v);
      return v;
    };
    // GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 layers).
    const residualStd = 0.02 / Math.sqrt(2 * layers);
    this.tokEmb = make([vocab, d], 'normal');
    this.posEmb = make([context, d], 'normal', 0.01);
    for (let l = 0; l < layers; l++) {
      this.blocks.push({
        ln1g: make([d], 'ones'),
        ln1b: make([d], 'zeros'),
        wqkv: make([d, 3 * d], 'normal'),
        bqkv: make([3 * d], 'zeros'),
        wo: make([d, d], 'normal', residualStd),
        bo: make([d], 'zeros'),
        ln2g: make([d], 'ones'),
        ln2b: make([d], 'zeros'),
        w1: make([d, 4 * d], 'normal'),
        b1: make([4 * d], 'zeros'),
        w2: make([4 * d, d], 'normal', residualStd),
        b2: make([d], 'zeros'),
      });
    }
    this.lnfg = make([d], 'ones');
    this.lnfb = make([d], 'zeros');
  }

  /** Copy every weight from a transformer of the same shape. */
  copyFrom(other: Transformer): void {
    this.variables.forEach((v, i) => {
      v.assign(other.variables[i]);
    });
  }

  /** Read every weight back to the host (one copy per variable). */
  async readWeights(): Promise<TransformerWeights> {
    const read = async (v: TF.Variable) => (await v.data()) as Float32Array;
    const blocks = await Promise.all(
      this.blocks.map(
        async (w) =>
          Object.fromEntries(
            await Promise.all(Object.entries(w).map(async ([k, v]) => [k, await read(v)] as const)),
          ) as Record<keyof BlockWeights, Float32Array>,
      ),
    );
    return {
      tokEmb: await read(this.tokEmb),
      posEmb: await read(this.posEmb),
      blocks,
      lnfg: await read(this.lnfg),
      lnfb: await read(this.lnfb),
    };
  }

  async saveArrays(prefix = 'w'): Promise<Record<string, Float32Array>> {
    const data = await Promise.all(this.variables.map((v) => v.data() as Promise<Float32Array>));
    return Object.fromEntries(data.map((a, i) => [`${prefix}${i}`, Float32Array.from(a)]));
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, prefix = 'w'): void {
    this.variables.forEach((v, i) => {
      const a = arrays[`${prefix}${i}`];
      if (!a || a.length !== v.size) throw new Error(`weights ${prefix}${i}: expected ${v.size} values`);
      const t = this.tf.tensor(Float32Array.from(a), v.shape);
      v.assign(t);
      t.dispose();
    });
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
    this.host?.dispose();
    this.host = undefined;
  }

  /**
   * Logits for every position of right-padded sequences [B, T] (T <= context), positions 0..T-1.
   * Padding at the end never influences earlier positions (causal mask), so no padding mask is needed.
   */
  forward(tokens: TF.Tensor2D): TF.Tensor3D {
    const tf = this.tf;
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      return tf.reshape(matMulTransposedB(tf, this.trunk(tokens), this.tokEmb), [
        b,
        t,
        this.shape.vocab,
      ]) as TF.Tensor3D;
    });
  }

  /**
   * `forward` that also returns the final hidden states LN_f(x_N) [B, T, d] (what the tied head reads;
   * value heads read them too), from the same pass: the logits are the same numbers as `forward`'s.
   */
  forwardWithHidden(tokens: TF.Tensor2D): { logits: TF.Tensor3D; hidden: TF.Tensor3D } {
    const tf = this.tf;
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      const hidden = this.trunk(tokens);
      const logits = matMulTransposedB(tf, hidden, this.tokEmb);
      return {
        logits: tf.reshape(logits, [b, t, this.shape.vocab]) as TF.Tensor3D,
        hidden: tf.reshape(hidden, [b, t, this.shape.width]) as TF.Tensor3D,
      };
    });
  }

  /**
   * [log pi(target), entropy] per position of right-padded inputs [B, T] and their targets [B, T], followed
   * with `withHidden` by the final hidden states: [B*T, 2 (+ d)], computed on the host in one op (trunk,
   * tied head, log-softmax: host-trunk.ts) when the host trunk serves this batch; undefined otherwise (then
   * take `forward`'s logits).
   */
  hostLogProbs(inputs: TF.Tensor2D, targets: TF.Tensor2D, withHidden = false): TF.Tensor2D | undefined {
    const tf = this.tf;
    const [b, t] = inputs.shape;
    this.checkLength(t);
    if (this.trunkKernels !== 'host' || !hostTrunkAvailable(tf, this.shape, b * t)) return undefined;
    this.host ??= new HostTrunk(this.shape);
    return hostTokenLogProbs(tf, this.host, inputs, targets, this.trunkWeights(), withHidden);
  }

  /** The weights the host ops take: tokEmb, posEmb, BLOCK_KEYS per block, lnfg, lnfb. */
  private trunkWeights(): TF.Variable[] {
    const blocks = this.blocks.flatMap((w) => BLOCK_KEYS.map((k) => w[k]));
    return [this.tokEmb, this.posEmb, ...blocks, this.lnfg, this.lnfb];
  }

  /** The final hidden states LN_f(x_N) [B*T, d] for right-padded tokens [B, T]. */
  private trunk(tokens: TF.Tensor2D): TF.Tensor2D {
    const tf = this.tf;
    const [b, t] = tokens.shape;
    this.checkLength(t);
    if (this.trunkKernels === 'host' && hostTrunkAvailable(tf, this.shape, b * t)) {
      this.host ??= new HostTrunk(this.shape);
      return hostTrunk(tf, this.host, tokens, this.trunkWeights());
    }
    const pos = tf.slice(this.posEmb, [0, 0], [t, this.shape.width]);
    const x0 = tf.add(tf.reshape(this.embed(tokens), [b, t, this.shape.width]), pos) as TF.Tensor3D;
    const attention = tf.reshape(causalBias(tf, t, t), [1, 1, t, t]) as TF.Tensor4D;
    let x = tf.reshape(x0, [b * t, this.shape.width]) as TF.Tensor2D;
    for (let l = 0; l < this.shape.layers; l++) x = this.block(x, b, t, l, attention).x;
    return layerNorm(tf, x, this.lnfg, this.lnfb);
  }

  /**
   * Run left-padded prompts [B, T] with explicit positions [B, T] and key padding bias [B, T] (0 or -1e9),
   * returning the last position's logits [B, V] and a cache holding every layer's keys and values.
   */
  prefill(
    tokens: TF.Tensor2D,
    positions: TF.Tensor2D,
    keyPadBias: TF.Tensor2D,
  ): { logits: TF.Tensor2D; cache: KvCache } {
    const tf = this.tf;
    const keys: TF.Tensor4D[] = [];
    const values: TF.Tensor4D[] = [];
    const [b, t] = tokens.shape;
    const logits = tf.tidy(() => {
      const x0 = tf.add(this.embed(tokens), this.positionEmbed(positions)) as TF.Tensor2D;
      const bias = tf.add(
        tf.reshape(causalBias(tf, t, t), [1, 1, t, t]),
        tf.reshape(keyPadBias, [b, 1, 1, t]),
      ) as TF.Tensor4D;
      let x = x0;
      for (let l = 0; l < this.shape.layers; l++) {
        const out = this.block(x, b, t, l, bias);
        keys.push(tf.keep(out.k as TF.Tensor4D));
        values.push(tf.keep(out.v as TF.Tensor4D));
        x = out.x;
      }
      const last = tf.reshape(tf.slice(tf.reshape(x, [b, t, this.shape.width]), [0, t - 1, 0], [b, 1, -1]), [
        b,
        this.shape.width,
      ]) as TF.Tensor2D;
      return this.head(last);
    });
    const keyBias = tf.keep(tf.reshape(keyPadBias, [b, 1, 1, t]) as TF.Tensor4D);
    return { logits, cache: { keys, values, keyBias, length: t } };
  }

  /**
   * One new token per row [B] at positions [B]: attends to the cache and appends its own key and value.
   * Returns logits [B, V]; the cache's tensors are replaced (the old ones disposed).
   */
  decode(tokens: TF.Tensor1D, positions: TF.Tensor1D, cache: KvCache): TF.Tensor2D {
    const tf = this.tf;
    const b = tokens.shape[0];
    // Kept: the caller may run this inside its own tidy scope, and the cache outlives it.
    const newBias = tf.keep(
      tf.tidy(() => tf.concat([cache.keyBias, tf.zeros([b, 1, 1, 1])], 3) as TF.Tensor4D),
    );
    const logits = tf.tidy(() => {
      let x = tf.add(
        this.embed(tf.reshape(tokens, [b, 1]) as TF.Tensor2D),
        this.positionEmbed(tf.reshape(positions, [b, 1]) as TF.Tensor2D),
      ) as TF.Tensor2D;
      for (let l = 0; l < this.shape.layers; l++) {
        const out = this.block(x, b, 1, l, newBias, { k: cache.keys[l], v: cache.values[l] });
        cache.keys[l].dispose();
        cache.values[l].dispose();
        cache.keys[l] = tf.keep(out.k as TF.Tensor4D);
        cache.values[l] = tf.keep(out.v as TF.Tensor4D);
        x = out.x;
      }
      return this.head(x);
    });
    cache.keyBias.dispose();
    cache.keyBias = newBias;
    cache.length += 1;
    return logits;
  }

  /**
   * Logits at the last position of left-padded sequences, recomputing the whole prefix (no cache): the
   * reference that the cached path must match, and the baseline of the speed benchmark.
   */
  lastLogitsFull(tokens: TF.Tensor2D, positions: TF.Tensor2D, keyPadBias: TF.Tensor2D): TF.Tensor2D {
    const out = this.prefill(tokens, positions, keyPadBias);
    disposeCache(out.cache);
    return out.logits;
  }

  private checkLength(t: number): void {
    if (t > this.shape.context) {
      throw new Error(`sequence of ${t} tokens exceeds the context length ${this.shape.context}`);
    }
  }

  /** tokens [B, T] -> [B*T, d]. */
  private embed(tokens: TF.Tensor2D): TF.Tensor2D {
    const tf = this.tf;
    const flat = tf.reshape(tokens, [-1]) as TF.Tensor1D;
    return selectRows(tf, oneHotFloat(tf, flat, this.shape.vocab), this.tokEmb);
  }

  /** positions [B, T] -> [B*T, d]. */
  private positionEmbed(positions: TF.Tensor2D): TF.Tensor2D {
    const tf = this.tf;
    const flat = tf.reshape(positions, [-1]) as TF.Tensor1D;
    return selectRows(tf, oneHotFloat(tf, flat, this.shape.context), this.posEmb);
  }

  private head(x: TF.Tensor2D): TF.Tensor2D {
    const tf = this.tf;
    return matMulTransposedB(tf, layerNorm(tf, x, this.lnfg, this.lnfb), this.tokEmb);
  }

  /**
   * One pre-norm block on x [B*T, d] as tensor ops. `attention` is the additive mask [B|1, 1, T, keys].
   * With `past`, keys and values are appended to the cached ones; returns the block's keys and values.
   */
  private block(
    x: TF.Tensor2D,
    b: number,
    t: number,
    l: number,
    attention: TF.Tensor4D,
    past?: { k: TF.Tensor4D; v: TF.Tensor4D },
  ): { x: TF.Tensor2D; k: TF.Tensor4D; v: TF.Tensor4D } {
    const tf = this.tf;
    const w = this.blocks[l];
    const qkv = linear(tf, layerNorm(tf, x, w.ln1g, w.ln1b), w.wqkv, w.bqkv);
    const att = this.tensorAttention(qkv, b, t, attention, past);
    const x1 = tf.add(x, linear(tf, att.merged, w.wo, w.bo)) as TF.Tensor2D;
    const hidden = layerNorm(tf, x1, w.ln2g, w.ln2b);
    const pre = linear(tf, hidden, w.w1, w.b1);
    const up = this.shape.activation === 'relu' ? tf.relu(pre) : gelu(tf, pre);
    const x2 = tf.add(x1, linear(tf, up, w.w2, w.b2)) as TF.Tensor2D;
    return { x: x2, k: att.k, v: att.v };
  }

  /** softmax(Q K^T / sqrt(d_h) + bias) V as tensor ops, heads merged back to [B*T, d]. */
  private tensorAttention(
    qkv: TF.Tensor2D,
    b: number,
    t: number,
    bias: TF.Tensor4D,
    past?: { k: TF.Tensor4D; v: TF.Tensor4D },
  ): { merged: TF.Tensor2D; k: TF.Tensor4D; v: TF.Tensor4D } {
    const tf = this.tf;
    const d = this.shape.width;
    const h = this.shape.heads;
    const dh = this.headSize;
    const [q0, k0, v0] = tf.split(qkv, 3, 1);
    const heads = (z: TF.Tensor) => tf.transpose(tf.reshape(z, [b, t, h, dh]), [0, 2, 1, 3]) as TF.Tensor4D;
    const q = heads(tf.mul(q0, 1 / Math.sqrt(dh)));
    let k = heads(k0);
    let v = heads(v0);
    if (past) {
      k = tf.concat([past.k, k], 2) as TF.Tensor4D;
      v = tf.concat([past.v, v], 2) as TF.Tensor4D;
    }
    const scores = tf.add(tf.matMul(q, k, false, true), bias);
    const attended = tf.matMul(tf.softmax(scores), v); // [B, H, T, dh]
    const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [b * t, d]) as TF.Tensor2D;
    return { merged, k, v };
  }
}

export function disposeCache(cache: KvCache): void {
  for (const t of cache.keys) t.dispose();
  for (const t of cache.values) t.dispose();
  cache.keyBias.dispose();
}

/** [rows, cols] additive mask: query i (the last `rows` of `cols` positions) sees keys j <= its position. */
function causalBias(tf: Tf, rows: number, cols: number): TF.Tensor2D {
  const data = new Float32Array(rows * cols);
  const offset = cols - rows;
  for (let i = 0; i < rows; i++) for (let j = i + offset + 1; j < cols; j++) data[i * cols + j] = NEG;
  return tf.tensor2d(data, [rows, cols]);
}

function layerNorm(tf: Tf, x: TF.Tensor2D, gamma: TF.Tensor, beta: TF.Tensor): TF.Tensor2D {
  const { mean, variance } = tf.moments(x, 1, true);
  return tf.add(
    tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS))), gamma),
    beta,
  ) as TF.Tensor2D;
}

/** GELU, tanh approximation (Hendrycks & Gimpel 2016): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
function gelu(tf: Tf, x: TF.Tensor2D): TF.Tensor2D {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(x, tf.square(x)), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as TF.Tensor2D;
}

/**
 * One-hot rows as float32. Made as int32 and cast: the WebAssembly backend's OneHot kernel writes the
 * integer bit pattern into float32 outputs (1 reads as 1.4e-45), so asking it for float32 directly fails.
 */
export function oneHotFloat(tf: Tf, indices: TF.Tensor1D, depth: number): TF.Tensor2D {
  return tf.cast(tf.oneHot(indices, depth), 'float32') as TF.Tensor2D;
}

type Linear = (x: TF.Tensor2D, w: TF.Tensor, b: TF.Tensor) => TF.Tensor2D;
type MatMulNT = (x: TF.Tensor2D, w: TF.Tensor) => TF.Tensor2D;
const linearByTf = new WeakMap<Tf, Linear>();
const matMulNTByTf = new WeakMap<Tf, MatMulNT>();

/**
 * x W + b with a gradient that transposes explicitly: on the WebAssembly backend a matMul with a
 * transpose flag (what tfjs's own gradient uses) is several times slower than transpose + plain matMul.
 */
export function linear(tf: Tf, x: TF.Tensor2D, w: TF.Tensor, b: TF.Tensor): TF.Tensor2D {
  let op = linearByTf.get(tf);
  if (!op) {
    op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [xi, wi, bi, save] = inputs as [TF.Tensor2D, TF.Tensor2D, TF.Tensor1D, TF.GradSaveFunc];
      save([xi, wi]);
      const value = tf.fused.matMul({ a: xi, b: wi, bias: bi });
      const gradFunc = (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [sx, sw] = saved as [TF.Tensor2D, TF.Tensor2D];
        const g = dy as TF.Tensor2D;
        return [tf.matMul(g, tf.transpose(sw)), tf.matMul(tf.transpose(sx), g), tf.sum(g, 0)];
      };
      return { value, gradFunc };
    }) as unknown as Linear;
    linearByTf.set(tf, op);
  }
  return op(x, w, b);
}

/** x W^T (the tied output head), with explicit transposes in value and gradient (see `linear`). */
export function matMulTransposedB(tf: Tf, x: TF.Tensor2D, w: TF.Tensor): TF.Tensor2D {
  let op = matMulNTByTf.get(tf);
  if (!op) {
    op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [xi, wi, save] = inputs as [TF.Tensor2D, TF.Tensor2D, TF.GradSaveFunc];
      save([xi, wi]);
      const value = tf.matMul(xi, tf.transpose(wi));
      const gradFunc = (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [sx, sw] = saved as [TF.Tensor2D, TF.Tensor2D];
        const g = dy as TF.Tensor2D;
        return [tf.matMul(g, sw), tf.matMul(tf.transpose(g), sx)];
      };
      return { value, gradFunc };
    }) as unknown as MatMulNT;
    matMulNTByTf.set(tf, op);
  }
  return op(x, w);
}

/** oneHot E: an embedding look-up; the one-hot rows are constants (their gradient is never used). */
type SelectRows = (oneHot: TF.Tensor2D, table: TF.Tensor) => TF.Tensor2D;
const selectRowsByTf = new WeakMap<Tf, SelectRows>();
function selectRows(tf: Tf, oneHot: TF.Tensor2D, table: TF.Tensor): TF.Tensor2D {
  let op = selectRowsByTf.get(tf);
  if (!op) {
    op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [oh, w, save] = inputs as [TF.Tensor2D, TF.Tensor2D, TF.GradSaveFunc];
      save([oh]);
      const value = tf.matMul(oh, w);
      const gradFunc = (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [so] = saved as [TF.Tensor2D];
        return [tf.zerosLike(so), tf.matMul(tf.transpose(so), dy as TF.Tensor2D)];
      };
      return { value, gradFunc };
    }) as unknown as SelectRows;
    selectRowsByTf.set(tf, op);
  }
  return op(oneHot, table);
}
