/**
 * Batched sampling from the transformer: left-padded prompts, one prefill, then one cached decode step per
 * new token for the whole batch. The only host read-back per step is the last position's logits [B, V],
 * from which tokens are drawn with the node's seeded random stream (temperature, top-k, top-p). The
 * log-probability recorded for each sampled token is that of the policy itself (temperature 1, no
 * truncation): the pi_old(a|s) that importance ratios in PPO/GRPO divide by.
 */
import type * as TF from '@tensorflow/tfjs';
import { isCpuBackend } from '../../../src-main/engine/nn/cpu-read.ts';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import type { Rng } from '../../../src-main/engine/rng.ts';
import { HostDecoder } from './host-decoder.ts';
import { disposeCache, type Transformer } from './model.ts';
import { BOS } from './tokenizer.ts';

export interface SamplingOptions {
  maxNewTokens: number;
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Generation of a row ends when its new text ends with one of these. */
  stop: string[];
}

export interface GeneratedSequence {
  tokens: Int32Array;
  logProbs: Float32Array;
  finish: 'stop' | 'length';
}

/** Scratch buffers for sampling one row, reused across rows and steps. */
export class TokenSampler {
  private probs: Float64Array;
  private order: Int32Array;

  constructor(readonly vocab: number) {
    this.probs = new Float64Array(vocab);
    this.order = new Int32Array(vocab);
  }

  /** Draw a token from row `row` of logits [B, V]; returns it with log pi(token) at temperature 1. */
  sample(
    logits: Float32Array,
    row: number,
    o: SamplingOptions,
    rng: Rng,
  ): { token: number; logProb: number } {
    const v = this.vocab;
    const base = row * v;
    let max = Number.NEGATIVE_INFINITY;
    let argmax = 0;
    for (let j = 0; j < v; j++) {
      if (logits[base + j] > max) {
        max = logits[base + j];
        argmax = j;
      }
    }
    let total = 0;
    for (let j = 0; j < v; j++) total += Math.exp(logits[base + j] - max);
    const logZ = max + Math.log(total);
    let token = argmax;
    if (o.temperature > 0) {
      const probs = this.probs;
      for (let j = 0; j < v; j++) probs[j] = Math.exp((logits[base + j] - max) / o.temperature);
      const topK = o.topK ?? 0;
      const topP = o.topP ?? 1;
      if ((topK > 0 && topK < v) || topP < 1) {
        const order = this.order;
        for (let j = 0; j < v; j++) order[j] = j;
        // Stable order: ties broken by token id, so the draw does not depend on sort internals.
        order.sort((a, b) => probs[b] - probs[a] || a - b);
        let kept = topK > 0 ? Math.min(topK, v) : v;
        if (topP < 1) {
          let mass = 0;
          for (let j = 0; j < v; j++) mass += probs[j];
          let cumulative = 0;
          for (let r = 0; r < kept; r++) {
            cumulative += probs[order[r]];
            if (cumulative >= topP * mass) {
              kept = r + 1;
              break;
            }
          }
        }
        for (let r = kept; r < v; r++) probs[order[r]] = 0;
      }
      token = rng.categorical(probs, 0, v);
    }
    return { token, logProb: logits[base + token] - logZ };
  }
}

/**
 * Where the next-token logits of a batch come from: `host` runs the KV-cached model in WebAssembly SIMD
 * kernels (host-decoder.ts; the fast path on the CPU backends), `tensor-cache` runs the same KV-cached math
 * as tensor ops (GPU backends), `full` recomputes the whole prefix at every step (the slow reference the
 * cached paths must agree with).
 */
export type DecodePath = 'host' | 'tensor-cache' | 'full';

/** The fastest cached path this backend and batch allow. */
export function cachedDecodePath(tf: Tf, model: Transformer, batch: number): DecodePath {
  return isCpuBackend(tf) && HostDecoder.supports(model.shape, batch) ? 'host' : 'tensor-cache';
}

/** Logits [B, V] of the prompts' last position, then of each step's new tokens. */
interface LogitSource {
  /** Rows not `active` have finished: their logits are not read (paths may skip them). */
  next(tokens: Int32Array, positions: Int32Array, active: boolean[]): Promise<Float32Array>;
  dispose(): void;
}

/**
 * Left-padded prompts as [B, T] tokens, positions (from 0 at each row's first real token) and key bias
 * (-1e9 on padding).
 */
interface PaddedPrompts {
  tokens: Int32Array;
  positions: Int32Array;
  keyBias: Float32Array;
  batch: number;
  width: number;
}

async function hostSource(
  model: Transformer,
  contexts: Int32Array[],
): Promise<{ first: Float32Array; source: LogitSource }> {
  const decoder = HostDecoder.for(model, contexts.length);
  decoder.load(await model.readWeights());
  const first = decoder.prefill(contexts);
  return {
    first,
    source: {
      next: async (tokens, positions, active) => decoder.decode(tokens, positions, active),
      dispose: () => {},
    },
  };
}

async function tensorCacheSource(
  tf: Tf,
  model: Transformer,
  p: PaddedPrompts,
): Promise<{ first: Float32Array; source: LogitSource }> {
  const inputs = [
    tf.tensor2d(p.tokens, [p.batch, p.width], 'int32'),
    tf.tensor2d(p.positions, [p.batch, p.width], 'int32'),
    tf.tensor2d(p.keyBias, [p.batch, p.width]),
  ] as const;
  const { logits, cache } = model.prefill(...inputs);
  tf.dispose([...inputs]);
  const read = async (t: TF.Tensor) => {
    const host = (await t.data()) as Float32Array;
    t.dispose();
    return host;
  };
  const source: LogitSource = {
    next: (tokens, positions) =>
      read(
        tf.tidy(() =>
          model.decode(
            tf.tensor1d(tokens.slice(0, p.batch), 'int32'),
            tf.tensor1d(positions.slice(0, p.batch), 'int32'),
            cache,
          ),
        ),
      ),
    dispose: () => disposeCache(cache),
  };
  try {
    return { first: await read(logits), source };
  } catch (error) {
    source.dispose();
    throw error;
  }
}

async function fullSource(
  tf: Tf,
  model: Transformer,
  p: PaddedPrompts,
): Promise<{ first: Float32Array; source: LogitSource }> {
  const b = p.batch;
  let { tokens: seq, positions: pos, keyBias: bias, width } = p;
  const run = async () => {
    const logits = tf.tidy(() =>
      model.lastLogitsFull(
        tf.tensor2d(seq, [b, width], 'int32'),
        tf.tensor2d(pos, [b, width], 'int32'),
        tf.tensor2d(bias, [b, width]),
      ),
    );
    const host = (await logits.data()) as Float32Array;
    logits.dispose();
    return host;
  };
  // Grows the host copies by one column per step.
  const next = (tokens: Int32Array, positions: Int32Array) => {
    const grown = width + 1;
    const s2 = new Int32Array(b * grown);
    const p2 = new Int32Array(b * grown);
    const m2 = new Float32Array(b * grown);
    for (let i = 0; i < b; i++) {
      s2.set(seq.subarray(i * width, (i + 1) * width), i * grown);
      p2.set(pos.subarray(i * width, (i + 1) * width), i * grown);
      m2.set(bias.subarray(i * width, (i + 1) * width), i * grown);
      s2[i * grown + width] = tokens[i];
      p2[i * grown + width] = positions[i];
    }
    seq = s2;
    pos = p2;
    bias = m2;
    width = grown;
    return run();
  };
  return { first: await run(), source: { next, dispose: () => {} } };
}

/**
 * Sample continuations of `contexts` (token ids, BOS first) as one batch; `path` picks how logits are
 * computed (default: the fastest cached path of this backend).
 */
export async function generateBatch(
  tf: Tf,
  model: Transformer,
  contexts: Int32Array[],
  options: SamplingOptions,
  rng: Rng,
  decodeText: (tokens: ArrayLike<number>) => string,
  path: DecodePath = cachedDecodePath(tf, model, contexts.length),
): Promise<GeneratedSequence[]> {
  const b = contexts.length;
  const vocab = model.shape.vocab;
  const context = model.shape.context;
  if (b === 0) return [];
  const lengths = contexts.map((c) => c.length);
  const padded = Math.max(...lengths);
  if (padded > context) {
    throw new Error(`a context of ${padded} tokens exceeds the model's context length ${context}`);
  }
  if (Math.min(...lengths) < 1) throw new Error('every context needs at least one token (BOS)');
  const budget = lengths.map((n) => Math.max(0, Math.min(options.maxNewTokens, context - n)));
  const out: {
    tokens: number[];
    logProbs: number[];
    text: string;
    done: boolean;
    finish: 'stop' | 'length';
  }[] = contexts.map((_, i) => ({
    tokens: [],
    logProbs: [],
    text: '',
    done: budget[i] === 0,
    finish: 'length',
  }));
  const sampler = new TokenSampler(vocab);
  const maxStop = Math.max(0, ...options.stop.map((s) => s.length));

  // Left padding: every row ends at column padded-1; padding keys are masked, positions start at 0.
  const prompts: PaddedPrompts = {
    tokens: new Int32Array(b * padded).fill(BOS),
    positions: new Int32Array(b * padded),
    keyBias: new Float32Array(b * padded),
    batch: b,
    width: padded,
  };
  for (let i = 0; i < b; i++) {
    const pad = padded - lengths[i];
    prompts.tokens.set(contexts[i], i * padded + pad);
    for (let j = 0; j < padded; j++) {
      prompts.positions[i * padded + j] = Math.max(0, j - pad);
      if (j < pad) prompts.keyBias[i * padded + j] = -1e9;
    }
  }
  const { first, source } =
    path === 'host'
      ? await hostSource(model, contexts)
      : path === 'tensor-cache'
        ? await tensorCacheSource(tf, model, prompts)
        : await fullSource(tf, model, prompts);
  let logits = first;
  const next = new Int32Array(b);
  const nextPos = new Int32Array(b);
  try {
    for (let step = 0; ; step++) {
      let active = 0;
      for (let i = 0; i < b; i++) {
        const row = out[i];
        next[i] = BOS;
        nextPos[i] = Math.min(context - 1, lengths[i] + step);
        if (row.done) continue;
        const { token, logProb } = sampler.sample(logits, i, options, rng);
        row.tokens.push(token);
        row.logProbs.push(logProb);
        row.text += decodeText([token]);
        next[i] = token;
        const tail = row.text.slice(-maxStop - 1);
        if (options.stop.some((s) => s.length > 0 && tail.endsWith(s))) {
          row.done = true;
          row.finish = 'stop';
        } else if (row.tokens.length >= budget[i]) {
          row.done = true;
        } else {
          active += 1;
        }
      }
      if (active === 0) break;
      logits = await source.next(
        next,
        nextPos,
        out.map((row) => !row.done),
      );
    }
  } finally {
    source.dispose();
  }
  return out.map((row) => ({
    tokens: Int32Array.from(row.tokens),
    logProbs: Float32Array.from(row.logProbs),
    finish: row.finish,
  }));
}
