/**
 * The transformer's trunk (embeddings, every block, the final layer norm; `model.ts`) as ONE differentiable
 * op computed on the host with the SIMD kernels of `wasm-simd.ts`, for training on the CPU backends. Op by
 * op, tfjs-wasm spends most of a training step outside the matrix products: element-wise kernels for layer
 * norm and GELU, copies between its heap and the host, one allocation per intermediate. Here the forward
 * pass keeps every activation in one reusable arena (a tape), and the backward pass reads them from it:
 *
 *   x_0 = E[tokens] + P[positions]
 *   a = LN_1(x);  qkv = a W_qkv + b_qkv;  x' = x + Attn(qkv) W_o + b_o
 *   h = LN_2(x'); z = h W_1 + b_1;        x'' = x' + act(z) W_2 + b_2
 *   out = LN_f(x_N)   (what the tied output head and the value heads read)
 *
 * Backward: g = LN_f'(dL/d out), then per block in reverse, with g = dL/dx'' (for y = x W + b:
 * dx = dy W^T, dW = x^T dy, db = 1^T dy):
 *   dW_2 = act(z)^T g,  dz = (g W_2^T) . act'(z),  dW_1 = h^T dz,  g' = g + LN_2'(dz W_1^T)
 *   dW_o = Attn^T g',   dqkv = Attn'(g' W_o^T),   dW_qkv = a^T dqkv, g_prev = g' + LN_1'(dqkv W_qkv^T)
 *   LN'(dy): x^ = (x - mu) rstd,  dx = rstd (dy.gamma - mean(dy.gamma) - x^ mean(dy.gamma . x^)),
 *            dgamma = sum_rows dy . x^,  dbeta = sum_rows dy
 * and the embedding rows receive g_0 (scatter-add by token and by position).
 *
 * The tape belongs to one `HostTrunk` (one per model). A backward pass whose forward is no longer on the
 * tape (another forward of the same model ran in between) recomputes it first from the inputs it kept.
 * The large products, the attention and the layer norms (wasm-layer-norm.ts) run on two threads
 * (SimdArena's `parallel`, kernel-helper.ts).
 */
import type * as TF from '@tensorflow/tfjs';
import {
  isCpuBackend,
  readInto,
  readIntsOnCpu,
  readOnCpu,
  tensorValues,
} from '../../../src-main/engine/nn/cpu-read.ts';
import { attentionScratchFloats } from '../../../src-main/engine/nn/wasm-attention.ts';
import {
  ACT_GELU,
  ACT_RELU,
  arenaFloats,
  SimdArena,
  type SimdBuffer,
} from '../../../src-main/engine/nn/wasm-simd.ts';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import type { TransformerShape } from './model.ts';

/** The per-block weights in the order the op takes them (after tokEmb and posEmb; lnfg, lnfb last). */
export const BLOCK_KEYS = [
  'ln1g',
  'ln1b',
  'wqkv',
  'bqkv',
  'wo',
  'bo',
  'ln2g',
  'ln2b',
  'w1',
  'b1',
  'w2',
  'b2',
] as const;
type BlockKey = (typeof BLOCK_KEYS)[number];

/**
 * Whether the host trunk serves this backend, shape and batch of `rows` = B*T tokens: the kernels take
 * column counts in fours, and the tape must fit in MAX_TAPE_BYTES.
 */
export function hostTrunkAvailable(tf: Tf, shape: TransformerShape, rows: number): boolean {
  if (!isCpuBackend(tf) || shape.width % 4 !== 0 || (shape.width / shape.heads) % 4 !== 0) return false;
  return arenaFloats(tapeLayout(rows, shape, trunkParamSizes(shape)).sizes) * 4 <= MAX_TAPE_BYTES;
}

/** One block's activations on the tape, for `rows` = B*T rows. */
interface BlockTape {
  x: SimdBuffer; // block input [R, d]
  mean1: SimdBuffer;
  rstd1: SimdBuffer;
  ln1: SimdBuffer; // [R, d]
  qkv: SimdBuffer; // [R, 3d]
  att: SimdBuffer; // [R, d]
  x1: SimdBuffer; // [R, d]
  mean2: SimdBuffer;
  rstd2: SimdBuffer;
  ln2: SimdBuffer; // [R, d]
  slope: SimdBuffer; // GELU's slope at the pre-activation z [R, 4d] (relu: z itself, unused)
  act: SimdBuffer; // [R, 4d]
  probs: SimdBuffer; // attention probabilities [B*heads, T, T]
}

/** Weights (copied in per call) and their gradients, in the op's input order. */
type Slots = SimdBuffer[];
/** Writes the weights (tokEmb, posEmb, the blocks', lnfg, lnfb) into the given tape buffers, in order. */
export type ParamSource = (into: Float32Array[]) => void;

/** The sizes of the op's weight inputs: tokEmb, posEmb, BLOCK_KEYS per block, lnfg, lnfb. */
function trunkParamSizes(shape: TransformerShape): number[] {
  const { vocab, context, width: d, layers } = shape;
  const block: Record<BlockKey, number> = {
    ln1g: d,
    ln1b: d,
    wqkv: 3 * d * d,
    bqkv: 3 * d,
    wo: d * d,
    bo: d,
    ln2g: d,
    ln2b: d,
    w1: 4 * d * d,
    b1: 4 * d,
    w2: 4 * d * d,
    b2: d,
  };
  const blocks = Array.from({ length: layers }, () => BLOCK_KEYS.map((k) => block[k])).flat();
  return [vocab * d, context * d, ...blocks, d, d];
}

/** The tape's buffer sizes in floats, in allocation order: weights, gradients, each block, the rest. */
function tapeLayout(rows: number, shape: TransformerShape, paramSizes: number[]) {
  const d = shape.width;
  const r = rows;
  // The last: attention probabilities, B*heads*T^2 <= rows*heads*context floats.
  const probs = r * shape.heads * shape.context;
  const blockSizes = [r * d, r, r, r * d, 3 * r * d, r * d, r * d, r, r, r * d, 4 * r * d, 4 * r * d, probs];
  const attention = 2 * attentionScratchFloats(shape.context, d / shape.heads);
  // out, meanF, rstdF, hidden, g, dAct, dLn, dAtt, dQkv, attention, panels, xT, tokens, logits,
  // dLogits, headOut, headGrad, targets, dHeadOut (the Tape's fields; tokens and targets: int32); panels:
  // the largest b packed: a weight gradient's dy [r, 4d], or a weight [d, 4d] / [4d, d].
  const panels = Math.max(r, d) * 4 * d;
  const v = shape.vocab;
  const restSizes = [
    r * d,
    r,
    r,
    r * d,
    r * d,
    4 * r * d,
    r * d,
    r * d,
    3 * r * d,
    attention,
    panels,
    r * d,
    r,
    r * v,
    r * v,
    2 * r,
    v * d,
    r,
    2 * r,
  ];
  const blocks = Array.from({ length: shape.layers }, () => blockSizes).flat();
  return { blockSizes, restSizes, sizes: [...paramSizes, ...paramSizes, ...blocks, ...restSizes] };
}

/** Refuses ids outside [0, vocab): they index rows of the embedding and the logits. */
function checkIds(what: string, ids: Int32Array, rows: number, vocab: number): void {
  for (let r = 0; r < rows; r++) {
    const id = ids[r];
    if (!(id >= 0 && id < vocab))
      throw new Error(`host trunk: ${what} id ${id} at ${r} is outside the vocabulary (${vocab})`);
  }
}

/** The largest tape the host trunk allocates; bigger batches take the tensor path. */
const MAX_TAPE_BYTES = 1 << 30;

class Tape {
  readonly arena: SimdArena;
  readonly params: Slots;
  readonly grads: Slots;
  readonly blocks: BlockTape[];
  readonly out: SimdBuffer; // x_N [R, d]
  readonly meanF: SimdBuffer;
  readonly rstdF: SimdBuffer;
  readonly hidden: SimdBuffer; // LN_f(x_N) [R, d]
  // Backward scratch.
  readonly g: SimdBuffer; // dL/dx of the current residual stream [R, d]
  readonly dAct: SimdBuffer; // [R, 4d]
  readonly dLn: SimdBuffer; // [R, d]
  readonly dAtt: SimdBuffer; // [R, d]
  readonly dQkv: SimdBuffer; // [R, 3d]
  readonly attention: SimdBuffer; // the attention kernels' scratch, for two threads
  readonly panels: SimdBuffer; // the b of the current large product, packed (wasm-packed.ts)
  readonly xT: SimdBuffer; // a weight gradient's x transposed [n <= d, R]
  readonly tokens: SimdBuffer; // the batch's token ids, int32 [R]
  // The tied head (forwardLogProbs, wasm-softmax.ts): logits, then log pi [R, V]; dL/dz [R, V];
  // [log pi(target), entropy] per row [R, 2]; the head's part of the token embedding's gradient [V, d].
  readonly logits: SimdBuffer;
  readonly dLogits: SimdBuffer;
  readonly headOut: SimdBuffer;
  readonly headGrad: SimdBuffer;
  readonly targets: SimdBuffer; // int32 [R]
  readonly dHeadOut: SimdBuffer; // dL/d headOut [R, 2]

  constructor(
    readonly rows: number,
    shape: TransformerShape,
    paramSizes: number[],
  ) {
    const { blockSizes, restSizes, sizes } = tapeLayout(rows, shape, paramSizes);
    this.arena = new SimdArena(arenaFloats(sizes), { helper: true });
    const a = this.arena;
    this.params = paramSizes.map((n) => a.alloc(n));
    this.grads = paramSizes.map((n) => a.alloc(n));
    this.blocks = Array.from({ length: shape.layers }, () => {
      const [x, mean1, rstd1, ln1, qkv, att, x1, mean2, rstd2, ln2, slope, act, probs] = blockSizes.map((n) =>
        a.alloc(n),
      );
      return { x, mean1, rstd1, ln1, qkv, att, x1, mean2, rstd2, ln2, slope, act, probs };
    });
    [
      this.out,
      this.meanF,
      this.rstdF,
      this.hidden,
      this.g,
      this.dAct,
      this.dLn,
      this.dAtt,
      this.dQkv,
      this.attention,
      this.panels,
      this.xT,
      this.tokens,
      this.logits,
      this.dLogits,
      this.headOut,
      this.headGrad,
      this.targets,
      this.dHeadOut,
    ] = restSizes.map((n) => a.alloc(n));
  }
}

/** The host trunk of one model: its tape, reused across calls (rebuilt larger when a batch outgrows it). */
export class HostTrunk {
  private tape?: Tape;
  private calls = 0;
  private onTape = -1;
  /** The call whose head (forwardLogProbs) is on the tape. */
  private headOnTape = -1;

  constructor(readonly shape: TransformerShape) {}

  /** Frees the tape and stops its helper thread. */
  dispose(): void {
    this.tape?.arena.dispose();
    this.tape = undefined;
  }

  private tapeFor(rows: number): Tape {
    if (!this.tape || this.tape.rows < rows) {
      this.tape?.arena.dispose();
      this.tape = new Tape(rows, this.shape, trunkParamSizes(this.shape));
      this.onTape = -1;
    }
    return this.tape;
  }

  /**
   * Runs the forward pass onto the tape; returns the call's number (for `backward`) and LN_f(x_N) [B*T, d].
   * Arrays returned here and by the backward passes are views of the tape: valid until the next call.
   */
  forward(
    tokens: Int32Array,
    b: number,
    t: number,
    params: ParamSource,
  ): { call: number; out: Float32Array } {
    const tape = this.tapeFor(b * t);
    this.run(tape, tokens, b, t, params);
    this.onTape = ++this.calls;
    return { call: this.onTape, out: tape.hidden.view.subarray(0, b * t * this.shape.width) };
  }

  /** Gradients of every weight input given dL/d LN_f(x_N); recomputes the forward pass if it left the tape. */
  backward(
    call: number,
    tokens: Int32Array,
    b: number,
    t: number,
    params: ParamSource,
    dOut: Float32Array,
  ): Float32Array[] {
    const tape = this.tapeFor(b * t);
    if (this.onTape !== call) {
      this.run(tape, tokens, b, t, params);
      this.onTape = call;
    }
    tape.dLn.view.set(dOut);
    this.runBackward(tape, tokens, b, t);
    return tape.grads.map((g) => g.view);
  }

  /**
   * The forward pass, then the tied output head z = LN_f(x_N) E^T and its log-softmax (wasm-softmax.ts): per
   * row [log pi(target), entropy] for `targets` [B*T] (each position's next token), followed with
   * `withHidden` by the row's LN_f(x_N) (what a value head reads): [B*T, 2 (+ d)].
   */
  forwardLogProbs(
    tokens: Int32Array,
    targets: Int32Array,
    b: number,
    t: number,
    params: ParamSource,
    withHidden: boolean,
  ): { call: number; out: Float32Array } {
    const d = this.shape.width;
    const rows = b * t;
    const tape = this.tapeFor(rows);
    checkIds('target', targets, rows, this.shape.vocab);
    this.run(tape, tokens, b, t, params);
    this.runHead(tape, targets, rows);
    this.onTape = ++this.calls;
    this.headOnTape = this.onTape;
    if (!withHidden) return { call: this.onTape, out: tape.headOut.view.subarray(0, 2 * rows) };
    const width = 2 + d;
    const out = new Float32Array(rows * width);
    for (let r = 0; r < rows; r++) {
      out[r * width] = tape.headOut.view[2 * r];
      out[r * width + 1] = tape.headOut.view[2 * r + 1];
      out.set(tape.hidden.view.subarray(r * d, (r + 1) * d), r * width + 2);
    }
    return { call: this.onTape, out };
  }

  /**
   * Gradients of every weight input given dL/d of `forwardLogProbs`'s rows (the same width); recomputes the
   * forward pass and the head if they left the tape. The tied embedding's gradient is the embedding rows'
   * plus the head's.
   */
  backwardLogProbs(
    call: number,
    tokens: Int32Array,
    targets: Int32Array,
    b: number,
    t: number,
    params: ParamSource,
    dOut: Float32Array,
  ): Float32Array[] {
    const { vocab, width: d } = this.shape;
    const rows = b * t;
    const tape = this.tapeFor(rows);
    if (this.onTape !== call || this.headOnTape !== call) {
      this.run(tape, tokens, b, t, params);
      this.runHead(tape, targets, rows);
      this.onTape = call;
      this.headOnTape = call;
    }
    const par = tape.arena.parallel;
    const [tok, dLogits, head] = [tape.params[0], tape.dLogits, tape.headGrad];
    const width = dOut.length / rows; // 2, or 2 + d with the hidden states
    const dHead = tape.dHeadOut.view;
    for (let r = 0; r < rows; r++) {
      dHead[2 * r] = dOut[r * width];
      dHead[2 * r + 1] = dOut[r * width + 1];
    }
    const [logPi, out] = [tape.logits.offset, tape.headOut.offset];
    par.logSoftmaxBwd(logPi, rows, vocab, tape.targets.offset, out, tape.dHeadOut.offset, dLogits.offset);
    // dL/d LN_f(x_N) = dz E (+ what the hidden states' readers sent) into dLn, where the trunk's backward
    // pass starts; the head's dE = dz^T LN_f(x_N).
    par.mmNN(dLogits.offset, rows, tok.offset, d, vocab, tape.dLn.offset);
    if (width > 2) {
      const dLn = tape.dLn.view;
      for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) dLn[r * d + c] += dOut[r * width + 2 + c];
    }
    par.mmTN(dLogits.offset, vocab, tape.hidden.offset, d, rows, head.offset, vocab);
    this.runBackward(tape, tokens, b, t);
    const dTok = tape.grads[0].view;
    for (let i = 0; i < vocab * d; i++) dTok[i] += head.view[i];
    return tape.grads.map((g) => g.view);
  }

  /** z = LN_f(x_N) E^T [rows, V] (E: the token embedding, tied), then log-softmax rows into headOut. */
  private runHead(tape: Tape, targets: Int32Array, rows: number): void {
    const { vocab, width: d } = this.shape;
    const par = tape.arena.parallel;
    new Int32Array(tape.targets.view.buffer, tape.targets.offset, rows).set(targets.subarray(0, rows));
    par.mm(tape.hidden.offset, rows, tape.params[0].offset, vocab, d, tape.logits.offset);
    par.logSoftmaxFwd(tape.logits.offset, rows, vocab, tape.targets.offset, tape.headOut.offset);
  }

  private run(tape: Tape, tokens: Int32Array, b: number, t: number, params: ParamSource): void {
    const { width: d, layers, heads } = this.shape;
    const rows = b * t;
    const par = tape.arena.parallel;
    params(tape.params.map((p) => p.view));
    // out = x W + bias (+ residual) ([rows, n] by [n, m]), W packed in panels first; with `act`, also
    // act(out) into its own buffer, and for GELU its slope over out (the product's epilogue, while each
    // panel of out is in cache).
    const panels = tape.panels.offset;
    const activation = this.shape.activation === 'relu' ? ACT_RELU : ACT_GELU;
    const linear = (
      x: SimdBuffer,
      n: number,
      w: SimdBuffer,
      m: number,
      out: SimdBuffer,
      bias: SimdBuffer,
      residual?: SimdBuffer,
      act?: SimdBuffer,
    ) => {
      par.packPanels(w.offset, m, n, m, panels, -1);
      par.mmNNPacked(
        x.offset,
        rows,
        panels,
        m,
        n,
        out.offset,
        n,
        m,
        bias.offset,
        residual?.offset ?? -1,
        act ? activation : -1,
        act?.offset ?? 0,
        act && activation === ACT_GELU ? out.offset : -1,
      );
    };
    const [tok, pos] = tape.params;
    const x0 = tape.blocks.length > 0 ? tape.blocks[0].x : tape.out;
    this.loadTokens(tape, tokens, rows);
    tape.arena.kernels.embedRows(tape.tokens.offset, tok.offset, pos.offset, x0.offset, rows, t, d);
    for (let l = 0; l < layers; l++) {
      const s = tape.blocks[l];
      const w = this.blockParams(tape.params, l);
      const next = l + 1 < layers ? tape.blocks[l + 1].x : tape.out;
      par.lnFwd(
        s.x.offset,
        w.ln1g.offset,
        w.ln1b.offset,
        s.ln1.offset,
        s.mean1.offset,
        s.rstd1.offset,
        rows,
        d,
      );
      linear(s.ln1, d, w.wqkv, 3 * d, s.qkv, w.bqkv);
      par.attnFwd(
        s.qkv.offset,
        s.att.offset,
        s.probs.offset,
        tape.attention.offset,
        0,
        b * heads,
        t,
        heads,
        d,
      );
      linear(s.att, d, w.wo, d, s.x1, w.bo, s.x);
      par.lnFwd(
        s.x1.offset,
        w.ln2g.offset,
        w.ln2b.offset,
        s.ln2.offset,
        s.mean2.offset,
        s.rstd2.offset,
        rows,
        d,
      );
      // act = GELU(z); z's place then takes GELU'(z), all the backward pass needs of it.
      linear(s.ln2, d, w.w1, 4 * d, s.slope, w.b1, undefined, s.act);
      linear(s.act, 4 * d, w.w2, d, next, w.b2, s.x1);
    }
    const [lnfg, lnfb] = tape.params.slice(-2);
    par.lnFwd(
      tape.out.offset,
      lnfg.offset,
      lnfb.offset,
      tape.hidden.offset,
      tape.meanF.offset,
      tape.rstdF.offset,
      rows,
      d,
    );
  }

  /** The backward pass from dL/d LN_f(x_N), which the caller put in tape.dLn. */
  private runBackward(tape: Tape, tokens: Int32Array, b: number, t: number): void {
    const { width: d, layers, heads } = this.shape;
    const rows = b * t;
    const k = tape.arena.kernels;
    const par = tape.arena.parallel;
    // y = x W + b, x [rows, n], W [n, m]: dW = x^T dy, db = 1^T dy, dx = dy W^T.
    const linearBackward = (
      x: SimdBuffer,
      n: number,
      dy: SimdBuffer,
      m: number,
      w: SimdBuffer,
      dW: SimdBuffer,
      dB: SimdBuffer,
      dx: SimdBuffer,
    ) => {
      const panels = tape.panels.offset;
      // Packing dy also sums its columns: db = 1^T dy.
      par.packPanels(dy.offset, m, rows, m, panels, dB.offset);
      // x^T dy: x walked down its columns reads one cache line per k for two floats, and with rows
      // 512 B apart those lines crowd a few L1 sets. Where x is narrower than dy, transposing it first
      // (rows x n copies) costs less than that: then x^T's rows are contiguous (the same numbers).
      if (n <= m && n <= d) {
        par.transposeInto(x.offset, rows, n, tape.xT.offset, rows);
        par.mmNNPacked(tape.xT.offset, n, panels, m, rows, dW.offset, rows, m, -1, -1, -1, 0, -1);
      } else par.mmTNPacked(x.offset, n, panels, m, rows, dW.offset, n);
      par.mm(dy.offset, rows, w.offset, n, m, dx.offset);
    };
    // g += LN'(dy) for a layer norm of x, with its gamma's and beta's gradients.
    const normBackward = (
      dy: SimdBuffer,
      x: SimdBuffer,
      mean: SimdBuffer,
      rstd: SimdBuffer,
      gamma: SimdBuffer,
      dGamma: SimdBuffer,
      dBeta: SimdBuffer,
    ) => {
      k.lnBwdCols(dy.offset, x.offset, mean.offset, rstd.offset, dGamma.offset, dBeta.offset, rows, d, d);
      par.lnBwdRows(dy.offset, x.offset, mean.offset, rstd.offset, gamma.offset, g.offset, rows, d);
    };
    // g = LN_f'(dOut) (dOut in dLn, which is free until the last block), then the blocks.
    const g = tape.g;
    g.view.fill(0);
    const n = tape.params.length;
    normBackward(
      tape.dLn,
      tape.out,
      tape.meanF,
      tape.rstdF,
      tape.params[n - 2],
      tape.grads[n - 2],
      tape.grads[n - 1],
    );
    for (let l = layers - 1; l >= 0; l--) {
      const s = tape.blocks[l];
      const w = this.blockParams(tape.params, l);
      const dw = this.blockParams(tape.grads, l);
      // x'' = x' + act(z) W_2 + b_2,  z = LN_2(x') W_1 + b_1
      linearBackward(s.act, 4 * d, g, d, w.w2, dw.w2, dw.b2, tape.dAct);
      if (this.shape.activation === 'relu')
        par.actGrad(tape.dAct.offset, s.act.offset, rows * 4 * d, ACT_RELU);
      else par.scaleBy(tape.dAct.offset, s.slope.offset, rows * 4 * d);
      linearBackward(s.ln2, d, tape.dAct, 4 * d, w.w1, dw.w1, dw.b1, tape.dLn);
      normBackward(tape.dLn, s.x1, s.mean2, s.rstd2, w.ln2g, dw.ln2g, dw.ln2b);
      // x' = x + Attn(qkv) W_o + b_o,  qkv = LN_1(x) W_qkv + b_qkv
      linearBackward(s.att, d, g, d, w.wo, dw.wo, dw.bo, tape.dAtt);
      par.attnBwd(
        s.qkv.offset,
        tape.dAtt.offset,
        tape.dQkv.offset,
        s.probs.offset,
        tape.attention.offset,
        0,
        b * heads,
        t,
        heads,
        d,
      );
      linearBackward(s.ln1, d, tape.dQkv, 3 * d, w.wqkv, dw.wqkv, dw.bqkv, tape.dLn);
      normBackward(tape.dLn, s.x, s.mean1, s.rstd1, w.ln1g, dw.ln1g, dw.ln1b);
    }
    // Embedding rows: scatter-add g_0 by token and by position.
    const [dTok, dPos] = tape.grads;
    dTok.view.fill(0);
    dPos.view.fill(0);
    this.loadTokens(tape, tokens, rows);
    k.scatterRows(tape.tokens.offset, g.offset, dTok.offset, dPos.offset, rows, t, d);
  }

  /** The batch's token ids into the arena (int32), each checked: the kernels index rows with them. */
  private loadTokens(tape: Tape, tokens: Int32Array, rows: number): void {
    checkIds('token', tokens, rows, this.shape.vocab);
    new Int32Array(tape.tokens.view.buffer, tape.tokens.offset, rows).set(tokens.subarray(0, rows));
  }

  private blockParams(slots: Slots, l: number): Record<BlockKey, SimdBuffer> {
    const base = 2 + l * BLOCK_KEYS.length;
    return Object.fromEntries(BLOCK_KEYS.map((key, i) => [key, slots[base + i]])) as Record<
      BlockKey,
      SimdBuffer
    >;
  }
}

type TrunkOp = (...weights: TF.Tensor[]) => TF.Tensor2D;

/**
 * The op's weights, read into the tape's buffers when a pass needs them: at the forward pass, and again
 * for a recompute, should the tape have moved on before the backward pass. Both read the op's inputs: a
 * tensor's values never change, and no variable is assigned between an op and its gradient within one
 * gradient computation, so a recompute sees the forward pass's values.
 */
function readWeights(tf: Tf, weights: TF.Tensor[]): ParamSource {
  return (into) => {
    weights.forEach((w, i) => {
      if (w.size !== into[i].length)
        throw new Error(`host trunk: weight ${i} should have ${into[i].length} values`);
      readInto(tf, w, into[i]);
    });
  };
}

/**
 * LN_f(x_N) [B*T, d] for right-padded tokens [B, T] (read once, here), as a differentiable op of the
 * weights [tokEmb, posEmb, ...BLOCK_KEYS per block, lnfg, lnfb].
 */
export function hostTrunk(tf: Tf, trunk: HostTrunk, tokens: TF.Tensor2D, weights: TF.Tensor[]): TF.Tensor2D {
  const [b, t] = tokens.shape;
  const ids = readIntsOnCpu(tf, tokens);
  const d = trunk.shape.width;
  const op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
    const ws = inputs.slice(0, weights.length) as TF.Tensor[];
    const params = readWeights(tf, ws);
    const { call, out } = trunk.forward(ids, b, t, params);
    const value = tf.tensor2d(tensorValues(tf, out), [b * t, d]);
    const gradFunc = (dy: TF.Tensor) => {
      const grads = trunk.backward(call, ids, b, t, params, readOnCpu(tf, dy));
      return grads.map((g, i) => tf.tensor(tensorValues(tf, g), ws[i].shape));
    };
    return { value, gradFunc };
  }) as unknown as TrunkOp;
  return op(...weights);
}

/**
 * [log pi(target), entropy] per position for input tokens [B, T] and their targets [B, T] (both read once,
 * here), followed with `withHidden` by the position's LN_f(x_N): [B*T, 2 (+ d)], as a differentiable op of
 * the same weights as `hostTrunk`: the trunk, the tied head and its log-softmax all on the host
 * (HostTrunk.forwardLogProbs).
 */
export function hostTokenLogProbs(
  tf: Tf,
  trunk: HostTrunk,
  inputs: TF.Tensor2D,
  targets: TF.Tensor2D,
  weights: TF.Tensor[],
  withHidden: boolean,
): TF.Tensor2D {
  const [b, t] = inputs.shape;
  const ids = readIntsOnCpu(tf, inputs);
  const next = readIntsOnCpu(tf, targets);
  const width = withHidden ? 2 + trunk.shape.width : 2;
  const op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
    const ws = inputs.slice(0, weights.length) as TF.Tensor[];
    const params = readWeights(tf, ws);
    const { call, out } = trunk.forwardLogProbs(ids, next, b, t, params, withHidden);
    const value = tf.tensor2d(tensorValues(tf, out), [b * t, width]);
    const gradFunc = (dy: TF.Tensor) => {
      const grads = trunk.backwardLogProbs(call, ids, next, b, t, params, readOnCpu(tf, dy));
      return grads.map((g, i) => tf.tensor(tensorValues(tf, g), ws[i].shape));
    };
    return { value, gradFunc };
  }) as unknown as TrunkOp;
  return op(...weights);
}
