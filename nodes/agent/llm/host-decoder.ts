/**
 * KV-cached generation of the transformer on the host: the weights are read back once per batch, then the
 * prefill and every decode step run in the WebAssembly SIMD kernels of `wasm-simd.ts`, with no tensor op
 * dispatch. The math is `Transformer.prefill` / `decode` (model.ts), term for term; only the float32
 * summation order differs, so logits agree to ~1e-5 (tested). On the CPU backends a decode step of a
 * small model is dominated by dispatching ~100 tiny ops; here it costs about its multiplies.
 *
 * Layout: linear weights are stored transposed ([out, in]) for `matMulTransposed`; the caches are
 * [layer][row, head, position, d_h], so one head's keys (or values) of one row are a contiguous
 * [positions, d_h] matrix. Rows need no padding: each keeps its own cache length, and rows that finished
 * are left out of later steps. The prefill runs one sequence at a time (its attention is per sequence
 * anyway), which bounds the activation buffers by the context length instead of batch x context.
 */
import {
  ACT_GELU,
  ACT_IDENTITY,
  ACT_RELU,
  arenaFloats,
  SimdArena,
  type SimdBuffer,
} from '../../../src-main/engine/nn/wasm-simd.ts';
import { addInto, layerNormRows } from './host-rows.ts';
import type { Transformer, TransformerShape, TransformerWeights } from './model.ts';

interface HostBlock {
  ln1g: Float32Array;
  ln1b: Float32Array;
  wqkv: SimdBuffer; // [3d, d]
  bqkv: SimdBuffer;
  wo: SimdBuffer; // [d, d]
  bo: SimdBuffer;
  ln2g: Float32Array;
  ln2b: Float32Array;
  w1: SimdBuffer; // [4d, d]
  b1: SimdBuffer;
  w2: SimdBuffer; // [d, 4d]
  b2: SimdBuffer;
  keys: SimdBuffer; // [batch, heads, context, d_h]
  values: SimdBuffer;
}

const decoders = new WeakMap<Transformer, HostDecoder>();

/** Above this many floats (weights, caches, activations) the tensor path decodes instead. */
const MAX_ARENA_FLOATS = 64 * 1024 * 1024;

function arenaSize(shape: TransformerShape, batch: number): number {
  const { vocab, context, width: d, heads, layers } = shape;
  const dh = d / heads;
  const rows = Math.max(batch, context);
  const cache = batch * context * d;
  const perBlock = [3 * d * d, 3 * d, d * d, d, 4 * d * d, 4 * d, 4 * d * d, d, cache, cache];
  return arenaFloats([
    vocab * d,
    ...Array(layers).fill(perBlock).flat(),
    ...[rows * d, rows * d, rows * 3 * d, rows * d, rows * d, rows * 4 * d],
    ...[context * dh, context * context, context * dh, batch * vocab, batch * vocab],
  ]);
}

export class HostDecoder {
  private readonly arena: SimdArena;
  private readonly d: number;
  private readonly dh: number;
  private readonly blocks: HostBlock[] = [];
  private readonly tokEmb: SimdBuffer; // [vocab, d]: embedding rows and the tied head
  private readonly posEmb: Float32Array;
  private readonly lnfg: Float32Array;
  private readonly lnfb: Float32Array;
  // Activations for up to `rows` rows (max of batch and context).
  private readonly x: SimdBuffer;
  private readonly h: SimdBuffer;
  private readonly qkv: SimdBuffer;
  private readonly att: SimdBuffer;
  private readonly out: SimdBuffer;
  private readonly up: SimdBuffer;
  private readonly query: SimdBuffer; // one head's queries [context, d_h]
  private readonly scores: SimdBuffer; // [context, context]
  private readonly headOut: SimdBuffer; // [context, d_h]
  private readonly logits: SimdBuffer; // [batch, vocab]
  private readonly activeLogits: SimdBuffer; // [active rows, vocab]
  /** Tokens in each row's cache. */
  private readonly rowLength: Int32Array;
  private rowsInUse = 0;

  /** Whether the host path takes this shape and batch: head size a multiple of 4, a bounded arena. */
  static supports(shape: TransformerShape, batch: number): boolean {
    return (shape.width / shape.heads) % 4 === 0 && arenaSize(shape, batch) <= MAX_ARENA_FLOATS;
  }

  /** The decoder of `model` for up to `batch` rows, reused across batches (weights reloaded by `load`). */
  static for(model: Transformer, batch: number): HostDecoder {
    let decoder = decoders.get(model);
    if (!decoder || decoder.batch < batch) {
      decoder = new HostDecoder(model.shape, Math.max(batch, decoder?.batch ?? 0));
      decoders.set(model, decoder);
    }
    return decoder;
  }

  constructor(
    readonly shape: TransformerShape,
    readonly batch: number,
  ) {
    const { vocab, context, width: d, heads, layers } = shape;
    this.d = d;
    this.dh = d / heads;
    const rows = Math.max(batch, context);
    const cache = batch * context * d;
    this.arena = new SimdArena(arenaSize(shape, batch));
    const a = this.arena;
    this.tokEmb = a.alloc(vocab * d);
    for (let l = 0; l < layers; l++) {
      this.blocks.push({
        ln1g: new Float32Array(d),
        ln1b: new Float32Array(d),
        wqkv: a.alloc(3 * d * d),
        bqkv: a.alloc(3 * d),
        wo: a.alloc(d * d),
        bo: a.alloc(d),
        ln2g: new Float32Array(d),
        ln2b: new Float32Array(d),
        w1: a.alloc(4 * d * d),
        b1: a.alloc(4 * d),
        w2: a.alloc(4 * d * d),
        b2: a.alloc(d),
        keys: a.alloc(cache),
        values: a.alloc(cache),
      });
    }
    this.x = a.alloc(rows * d);
    this.h = a.alloc(rows * d);
    this.qkv = a.alloc(rows * 3 * d);
    this.att = a.alloc(rows * d);
    this.out = a.alloc(rows * d);
    this.up = a.alloc(rows * 4 * d);
    this.query = a.alloc(context * this.dh);
    this.scores = a.alloc(context * context);
    this.headOut = a.alloc(context * this.dh);
    this.logits = a.alloc(batch * vocab);
    this.activeLogits = a.alloc(batch * vocab);
    this.posEmb = new Float32Array(context * d);
    this.lnfg = new Float32Array(d);
    this.lnfb = new Float32Array(d);
    this.rowLength = new Int32Array(batch);
  }

  /** Copy the model's current weights in (linear weights transposed to [out, in]). */
  load(weights: TransformerWeights): void {
    const d = this.d;
    this.tokEmb.view.set(weights.tokEmb);
    this.posEmb.set(weights.posEmb);
    this.lnfg.set(weights.lnfg);
    this.lnfb.set(weights.lnfb);
    weights.blocks.forEach((w, l) => {
      const b = this.blocks[l];
      b.ln1g.set(w.ln1g);
      b.ln1b.set(w.ln1b);
      b.ln2g.set(w.ln2g);
      b.ln2b.set(w.ln2b);
      transposeInto(w.wqkv, d, 3 * d, b.wqkv.view);
      b.bqkv.view.set(w.bqkv);
      transposeInto(w.wo, d, d, b.wo.view);
      b.bo.view.set(w.bo);
      transposeInto(w.w1, d, 4 * d, b.w1.view);
      b.b1.view.set(w.b1);
      transposeInto(w.w2, 4 * d, d, b.w2.view);
      b.b2.view.set(w.b2);
    });
  }

  /**
   * Run each context (token ids; no padding needed: every row keeps its own cache length) and fill the
   * caches. Returns each row's last-position logits [B, V] (a view, valid until the next call). The same
   * numbers as `Transformer.prefill` of the left-padded batch, whose padding keys are masked.
   */
  prefill(contexts: Int32Array[]): Float32Array {
    const { context, vocab } = this.shape;
    const b = contexts.length;
    if (b > this.batch) throw new Error(`HostDecoder: batch ${b} exceeds ${this.batch}`);
    this.rowsInUse = b;
    contexts.forEach((tokens, row) => {
      const t = tokens.length;
      if (t > context) throw new Error(`sequence of ${t} tokens exceeds the context length ${context}`);
      this.embed(
        tokens,
        Int32Array.from({ length: t }, (_, i) => i),
      );
      for (let l = 0; l < this.blocks.length; l++) this.block(l, t, () => this.attendPrefill(l, row, t));
      this.rowLength[row] = t;
      // Final norm and head for the last position only.
      this.h.view.set(this.x.view.subarray((t - 1) * this.d, t * this.d));
      layerNormRows(this.h.view, 1, this.d, this.lnfg, this.lnfb);
      this.arena.kernels.mm(
        this.h.offset,
        1,
        this.tokEmb.offset,
        vocab,
        this.d,
        this.logits.offset + 4 * row * vocab,
      );
    });
    return this.logits.view.subarray(0, b * vocab);
  }

  /**
   * One new token for each row where `active` is set, at the given positions, appended to that row's
   * cache; returns logits [B, V] (rows not active keep their previous logits). Rows that finished are
   * skipped, so they cost nothing and their caches never overflow.
   */
  decode(tokens: Int32Array, positions: Int32Array, active: ArrayLike<boolean>): Float32Array {
    const b = this.rowsInUse;
    const { context, vocab } = this.shape;
    const rows: number[] = [];
    for (let row = 0; row < b; row++) {
      if (!active[row]) continue;
      if (this.rowLength[row] >= context)
        throw new Error(`the KV cache of row ${row} is full (context ${context})`);
      rows.push(row);
    }
    const m = rows.length;
    if (m > 0) {
      this.embed(
        Int32Array.from(rows, (row) => tokens[row]),
        Int32Array.from(rows, (row) => positions[row]),
      );
      for (let l = 0; l < this.blocks.length; l++) this.block(l, m, () => this.attendDecode(l, rows));
      for (const row of rows) this.rowLength[row] += 1;
      layerNormRows(this.x.view, m, this.d, this.lnfg, this.lnfb, this.h.view);
      this.arena.kernels.mm(this.h.offset, m, this.tokEmb.offset, vocab, this.d, this.activeLogits.offset);
      rows.forEach((row, j) => {
        this.logits.view.set(this.activeLogits.view.subarray(j * vocab, (j + 1) * vocab), row * vocab);
      });
    }
    return this.logits.view.subarray(0, b * vocab);
  }

  /** x[r] = E[tokens[r]] + P[positions[r]] for the first tokens.length rows. */
  private embed(tokens: Int32Array, positions: Int32Array): void {
    const d = this.d;
    const x = this.x.view;
    const e = this.tokEmb.view;
    for (let r = 0; r < tokens.length; r++) {
      const te = tokens[r] * d;
      const pe = positions[r] * d;
      for (let c = 0; c < d; c++) x[r * d + c] = e[te + c] + this.posEmb[pe + c];
    }
  }

  /** One pre-norm block over `rows` rows of x; `attend` fills att [rows, d] from qkv [rows, 3d]. */
  private block(l: number, rows: number, attend: () => void): void {
    const d = this.d;
    const w = this.blocks[l];
    const k = this.arena.kernels;
    layerNormRows(this.x.view, rows, d, w.ln1g, w.ln1b, this.h.view);
    k.mm(this.h.offset, rows, w.wqkv.offset, 3 * d, d, this.qkv.offset);
    k.biasAct(this.qkv.offset, rows, 3 * d, w.bqkv.offset, ACT_IDENTITY);
    attend();
    k.mm(this.att.offset, rows, w.wo.offset, d, d, this.out.offset);
    k.biasAct(this.out.offset, rows, d, w.bo.offset, ACT_IDENTITY);
    addInto(this.x.view, this.out.view, rows * d);
    layerNormRows(this.x.view, rows, d, w.ln2g, w.ln2b, this.h.view);
    k.mm(this.h.offset, rows, w.w1.offset, 4 * d, d, this.up.offset);
    k.biasAct(
      this.up.offset,
      rows,
      4 * d,
      w.b1.offset,
      this.shape.activation === 'relu' ? ACT_RELU : ACT_GELU,
    );
    k.mm(this.up.offset, rows, w.w2.offset, d, 4 * d, this.out.offset);
    k.biasAct(this.out.offset, rows, d, w.b2.offset, ACT_IDENTITY);
    addInto(this.x.view, this.out.view, rows * d);
  }

  /** Byte offset of cache[row, head, position, 0] in a cache buffer. */
  private cacheAt(cache: SimdBuffer, row: number, head: number, position: number): number {
    const { context, heads } = this.shape;
    return cache.offset + 4 * (((row * heads + head) * context + position) * this.dh);
  }

  /** Causal attention of one sequence's t positions (qkv rows 0..t-1) over itself; fills the cache. */
  private attendPrefill(l: number, row: number, t: number): void {
    const { d, dh } = this;
    const { heads } = this.shape;
    const w = this.blocks[l];
    const k = this.arena.kernels;
    for (let head = 0; head < heads; head++) {
      this.gatherHead(w, row, head, 0, t, 0);
      k.mm(this.query.offset, t, this.cacheAt(w.keys, row, head, 0), t, dh, this.scores.offset);
      for (let i = 0; i < t; i++) softmaxRow(this.scores.view, i * t, i + 1, t);
      k.mmNN(this.scores.offset, t, this.cacheAt(w.values, row, head, 0), dh, t, this.headOut.offset);
      scatterHead(this.headOut.view, this.att.view, t, d, dh, head);
    }
  }

  /** Active row j (sequence rows[j]): its new query over its cached keys plus its own, appended. */
  private attendDecode(l: number, rows: number[]): void {
    const { d, dh } = this;
    const { heads } = this.shape;
    const w = this.blocks[l];
    const k = this.arena.kernels;
    rows.forEach((row, j) => {
      const n = this.rowLength[row] + 1;
      for (let head = 0; head < heads; head++) {
        this.gatherHead(w, row, head, j, 1, n - 1);
        k.mm(this.query.offset, 1, this.cacheAt(w.keys, row, head, 0), n, dh, this.scores.offset);
        softmaxRow(this.scores.view, 0, n, n);
        k.mmNN(this.scores.offset, 1, this.cacheAt(w.values, row, head, 0), dh, n, this.headOut.offset);
        this.att.view.set(this.headOut.view.subarray(0, dh), j * d + head * dh);
      }
    });
  }

  /**
   * One head's queries (scaled by 1/sqrt(d_h)) of `count` qkv rows from `firstRow` into the query scratch,
   * and their keys and values into the caches of sequence `row` from `position` on.
   */
  private gatherHead(
    w: HostBlock,
    row: number,
    head: number,
    firstRow: number,
    count: number,
    position: number,
  ) {
    const { d, dh } = this;
    const mem = this.qkv.view;
    const q = this.query.view;
    const scale = 1 / Math.sqrt(dh);
    const at = (this.cacheAt(w.keys, row, head, position) - w.keys.offset) / 4;
    const keys = w.keys.view;
    const values = w.values.view;
    for (let i = 0; i < count; i++) {
      const src = (firstRow + i) * 3 * d + head * dh;
      const dst = at + i * dh;
      for (let c = 0; c < dh; c++) {
        q[i * dh + c] = mem[src + c] * scale;
        keys[dst + c] = mem[src + d + c];
        values[dst + c] = mem[src + 2 * d + c];
      }
    }
  }
}

/** out[c, r] = m[r, c] for a row-major [rows, cols] m. */
function transposeInto(m: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
}

/** In place over s[start .. start+width): softmax of the first `visible` scores; the rest (masked) become 0. */
function softmaxRow(s: Float32Array, start: number, visible: number, width: number): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < visible; j++) if (s[start + j] > max) max = s[start + j];
  let total = 0;
  for (let j = 0; j < visible; j++) {
    const e = Math.exp(s[start + j] - max);
    s[start + j] = e;
    total += e;
  }
  const inv = 1 / total;
  for (let j = 0; j < visible; j++) s[start + j] *= inv;
  for (let j = visible; j < width; j++) s[start + j] = 0;
}

/** att[i, head*dh + c] = headOut[i, c] for i < t. */
function scatterHead(
  headOut: Float32Array,
  att: Float32Array,
  t: number,
  d: number,
  dh: number,
  head: number,
): void {
  for (let i = 0; i < t; i++) att.set(headOut.subarray(i * dh, (i + 1) * dh), i * d + head * dh);
}
