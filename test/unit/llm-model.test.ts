/**
 * The transformer behind agent.llm: causal attention, the KV cache agreeing with full re-forward
 * generation, sequence log-probabilities as sums of token log-probabilities, sampling rules, tensors freed.
 */
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateBatch, TokenSampler } from '../../nodes/agent/llm/generate.ts';
import { HostDecoder } from '../../nodes/agent/llm/host-decoder.ts';
import { hostTrunkAvailable } from '../../nodes/agent/llm/host-trunk.ts';
import { disposeCache, parameterCount, Transformer } from '../../nodes/agent/llm/model.ts';
import { LlmPolicy, sequenceLogProbs } from '../../nodes/agent/llm/policy.ts';
import { CharTokenizer } from '../../nodes/agent/llm/tokenizer.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import { attentionScratchFloats } from '../../src-main/engine/nn/wasm-attention.ts';
import { arenaFloats, type ParallelKernels, SimdArena } from '../../src-main/engine/nn/wasm-simd.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';

let tf: Tf;
beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
});

const shape = { vocab: 97, context: 32, width: 32, heads: 4, layers: 2, activation: 'gelu' as const };

describe('tokenizer', () => {
  it('round-trips printable text and newlines, BOS first, and refuses other characters', () => {
    const tok = new CharTokenizer();
    expect(tok.vocabSize).toBe(97);
    const ids = tok.encode('Q 12*3\n<calc>');
    expect(ids[0]).toBe(0);
    expect(ids.length).toBe(14);
    expect(tok.decode(ids.subarray(1))).toBe('Q 12*3\n<calc>');
    expect(() => tok.encode('é')).toThrow(/outside the tokenizer's vocabulary/);
  });
});

describe('transformer', () => {
  it('counts parameters like the PyTorch reference shape (4 x 128, context 128, vocab 96: ~0.8M)', () => {
    const n = parameterCount({
      vocab: 96,
      context: 128,
      width: 128,
      heads: 4,
      layers: 4,
      activation: 'gelu',
    });
    // torch: 96*128 + 128*128 + 4 * (12 d^2 + 13 d = 198,272) + 2 * 128 = 822,016
    expect(n).toBe(822_016);
    const model = new Transformer(tf, shape, new Rng(1), 'count');
    expect(model.variables.reduce((s, v) => s + v.size, 0)).toBe(parameterCount(shape));
    model.dispose();
  });

  it('is causal: changing a later token never changes an earlier position’s logits', () => {
    const model = new Transformer(tf, shape, new Rng(2), 'causal');
    const a = Int32Array.from([0, 5, 9, 13, 40, 41, 42, 7]);
    const b = a.slice();
    b[5] = 77;
    b[7] = 3;
    const [la, lb] = [a, b].map((x) =>
      tf.tidy(() => model.forward(tf.tensor2d(x, [1, 8], 'int32')).arraySync()[0]),
    );
    for (let t = 0; t < 5; t++) for (let v = 0; v < 97; v++) expect(lb[t][v]).toBe(la[t][v]);
    // ...and the later positions do see the change.
    expect(Math.max(...la[6].map((x, v) => Math.abs(x - lb[6][v])))).toBeGreaterThan(1e-4);
    model.dispose();
  });

  for (const path of ['host', 'tensor-cache'] as const) {
    it(`KV-cache generation (${path}) gives the same tokens and log-probs as full re-forward generation`, async () => {
      const model = new Transformer(tf, shape, new Rng(3), 'kv');
      const tok = new CharTokenizer();
      const contexts = ['Q 347*28\n', 'hi', 'a longer prompt\n'].map((s) => tok.encode(s));
      const options = { maxNewTokens: 12, temperature: 1, stop: ['}'] };
      const decode = (t: ArrayLike<number>) => tok.decode(t);
      const before = tf.memory().numTensors;
      const cached = await generateBatch(tf, model, contexts, options, new Rng(9), decode, path);
      expect(tf.memory().numTensors).toBe(before);
      const full = await generateBatch(tf, model, contexts, options, new Rng(9), decode, 'full');
      expect(tf.memory().numTensors).toBe(before);
      for (let i = 0; i < contexts.length; i++) {
        expect(Array.from(cached[i].tokens)).toEqual(Array.from(full[i].tokens));
        expect(cached[i].finish).toBe(full[i].finish);
        cached[i].logProbs.forEach((lp, k) => {
          expect(lp).toBeCloseTo(full[i].logProbs[k], 4);
        });
      }
      // A short prompt beside one near the context length: the short row may generate up to the context
      // (past the padded width plus its budget), with no stop string to end it early.
      const uneven = ['hi', 'a prompt of twenty-seven ch'].map((s) => tok.encode(s));
      const long = { maxNewTokens: 40, temperature: 1, stop: [] };
      const unevenCached = await generateBatch(tf, model, uneven, long, new Rng(2), decode, path);
      const unevenFull = await generateBatch(tf, model, uneven, long, new Rng(2), decode, 'full');
      expect(unevenCached.map((r) => r.tokens.length)).toEqual([29, 4]);
      expect(unevenCached.map((r) => Array.from(r.tokens))).toEqual(
        unevenFull.map((r) => Array.from(r.tokens)),
      );
      // A batch row gives the same continuation as that prompt alone (padding is invisible).
      const alone = await generateBatch(tf, model, [contexts[1]], options, new Rng(5), decode, path);
      const aloneFull = await generateBatch(tf, model, [contexts[1]], options, new Rng(5), decode, 'full');
      expect(Array.from(alone[0].tokens)).toEqual(Array.from(aloneFull[0].tokens));
      model.dispose();
    });
  }

  it('the host decoder gives the tensor path’s logits at every step (gelu and relu, batch reuse)', async () => {
    for (const activation of ['gelu', 'relu'] as const) {
      const s = { ...shape, activation };
      const model = new Transformer(tf, s, new Rng(11), `host-${activation}`);
      // Left-padded batch of 3 prompts of width 6, then 5 decode steps.
      const b = 3;
      const t = 6;
      const tokens = Int32Array.from({ length: b * t }, (_, i) => 2 + ((i * 7) % 90));
      const pad = [0, 2, 4];
      const positions = new Int32Array(b * t);
      const keyBias = new Float32Array(b * t);
      for (let r = 0; r < b; r++)
        for (let j = 0; j < t; j++) {
          positions[r * t + j] = Math.max(0, j - pad[r]);
          if (j < pad[r]) keyBias[r * t + j] = -1e9;
        }
      // A decoder built for a bigger batch first, as a reused one would be.
      const host = HostDecoder.for(model, 8);
      host.load(await model.readWeights());
      const expectClose = (a: Float32Array, e: Float32Array) => {
        expect(a.length).toBe(e.length);
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]));
        expect(worst).toBeLessThan(2e-5);
      };
      const inputs = [
        tf.tensor2d(tokens, [b, t], 'int32'),
        tf.tensor2d(positions, [b, t], 'int32'),
        tf.tensor2d(keyBias, [b, t]),
      ] as const;
      const { logits, cache } = model.prefill(...inputs);
      tf.dispose([...inputs]);
      // The host decoder takes the prompts unpadded.
      const contexts = pad.map((p, r) => tokens.slice(r * t + p, (r + 1) * t));
      expectClose(host.prefill(contexts), logits.dataSync() as Float32Array);
      logits.dispose();
      const v = s.vocab;
      let previous = new Float32Array(0);
      for (let step = 0; step < 5; step++) {
        const next = Int32Array.from({ length: b }, (_, r) => 3 + ((step * 13 + r * 5) % 90));
        const at = Int32Array.from({ length: b }, (_, r) => t - pad[r] + step);
        const expected = tf.tidy(() =>
          model.decode(tf.tensor1d(next, 'int32'), tf.tensor1d(at, 'int32'), cache),
        );
        const expectedLogits = expected.dataSync() as Float32Array;
        expected.dispose();
        if (step < 4) {
          previous = host.decode(next, at, [true, true, true]).slice();
          expectClose(previous, expectedLogits);
          continue;
        }
        // Row 1 finished: skipped, its logits stay as they were; rows 0 and 2 are unaffected.
        const partial = host.decode(next, at, [true, false, true]);
        expect(Array.from(partial.subarray(v, 2 * v))).toEqual(Array.from(previous.subarray(v, 2 * v)));
        for (const r of [0, 2])
          expectClose(partial.subarray(r * v, (r + 1) * v), expectedLogits.subarray(r * v, (r + 1) * v));
      }
      disposeCache(cache);
      model.dispose();
    }
  });

  it('left padding is invisible: a padded row gets the logits of the same prompt alone', () => {
    const model = new Transformer(tf, shape, new Rng(4), 'pad');
    const prompt = Int32Array.from([0, 10, 11, 12]);
    const alone = tf.tidy(() =>
      model
        .lastLogitsFull(
          tf.tensor2d(prompt, [1, 4], 'int32'),
          tf.tensor2d([0, 1, 2, 3], [1, 4], 'int32'),
          tf.zeros([1, 4]) as TF.Tensor2D,
        )
        .arraySync(),
    );
    const padded = tf.tidy(() =>
      model
        .lastLogitsFull(
          tf.tensor2d([0, 0, 0, 10, 11, 12], [1, 6], 'int32'),
          tf.tensor2d([0, 0, 0, 1, 2, 3], [1, 6], 'int32'),
          tf.tensor2d([-1e9, -1e9, 0, 0, 0, 0], [1, 6]),
        )
        .arraySync(),
    );
    alone[0].forEach((x, v) => {
      expect(padded[0][v]).toBeCloseTo(x, 4);
    });
    model.dispose();
  });

  it('the log-prob of a sequence is the sum of its per-token log-probs (chain rule)', () => {
    const policy = new LlmPolicy(
      tf,
      'lp',
      { context: 32, width: 32, heads: 4, layers: 2, activation: 'relu' },
      new Rng(5),
    );
    const text = 'Q 1*2';
    const ids = policy.encode(text);
    const perToken = tf.tidy(
      () => policy.tokenLogProbs(tf.tensor2d(ids, [1, ids.length], 'int32')).logProbs.arraySync()[0],
    );
    // Chain rule by hand: log p(x_1..x_n) = sum_t log softmax(forward(x_<t))[x_t], one prefix at a time.
    let byPrefix = 0;
    for (let t = 1; t < ids.length; t++) {
      byPrefix += tf.tidy(() => {
        const logits = policy.model.forward(tf.tensor2d(ids.subarray(0, t), [1, t], 'int32'));
        const last = tf.logSoftmax(tf.reshape(tf.slice(logits, [0, t - 1, 0], [1, 1, 97]), [97]));
        return (last.arraySync() as number[])[ids[t]];
      });
    }
    expect(perToken.reduce((a, b) => a + b, 0)).toBeCloseTo(byPrefix, 4);
    policy.dispose();
  });
});

describe('token sampler', () => {
  const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  it('greedy takes the argmax and reports log pi at temperature 1', () => {
    const s = new TokenSampler(4);
    const out = s.sample(logits, 0, { maxNewTokens: 1, temperature: 0, stop: [] }, new Rng(1));
    expect(out.token).toBe(0);
    expect(out.logProb).toBeCloseTo(Math.log(0.5), 5);
  });
  it('top-k 2 and top-p 0.7 only ever draw the two most likely tokens; frequencies follow pi', () => {
    const s = new TokenSampler(4);
    const rng = new Rng(2);
    for (const o of [{ topK: 2 }, { topP: 0.7 }]) {
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < 4000; i++)
        counts[s.sample(logits, 0, { maxNewTokens: 1, temperature: 1, stop: [], ...o }, rng).token]++;
      expect(counts[2] + counts[3]).toBe(0);
      expect(counts[0] / 4000).toBeCloseTo(0.5 / 0.8, 1);
    }
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++)
      counts[s.sample(logits, 0, { maxNewTokens: 1, temperature: 1, stop: [] }, rng).token]++;
    expect(counts[3] / 4000).toBeCloseTo(0.05, 1);
  });
});

describe('attention kernels', () => {
  /** The same attention as plain tensor ops: the reference the host op must match. */
  function tensorAttention(qkv: TF.Tensor2D, b: number, t: number, heads: number): TF.Tensor2D {
    const d = qkv.shape[1] / 3;
    const dh = d / heads;
    const [q0, k0, v0] = tf.split(qkv, 3, 1);
    const split = (z: TF.Tensor) => tf.transpose(tf.reshape(z, [b, t, heads, dh]), [0, 2, 1, 3]);
    const mask = tf.tensor2d(
      Float32Array.from({ length: t * t }, (_, i) => (i % t > Math.floor(i / t) ? -1e9 : 0)),
      [t, t],
    );
    const scores = tf.add(tf.matMul(split(tf.mul(q0, 1 / Math.sqrt(dh))), split(k0), false, true), mask);
    const out = tf.matMul(tf.softmax(scores), split(v0));
    return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, d]) as TF.Tensor2D;
  }

  // Lengths under one causal block of rows (16) and over two, ending in a partial block.
  it.each([
    [2, 7, 3, 4],
    [2, 37, 2, 8],
  ])(
    'gives the tensor ops’ outputs and gradients (%i sequences of %i tokens, %i heads of %i; one or two threads)',
    async (b, t, heads, dh) => {
      const d = heads * dh;
      const scratch = attentionScratchFloats(t, dh);
      const qkv = tf.tensor2d(
        Float32Array.from({ length: b * t * 3 * d }, (_, i) => Math.sin(i * 0.91) * 1.5),
        [b * t, 3 * d],
      );
      // A fixed upstream gradient: loss = sum(out * w).
      const w = tf.tensor2d(
        Float32Array.from({ length: b * t * d }, (_, i) => Math.cos(i * 0.37)),
        [b * t, d],
      );
      const [refOut, refGrad] = tf.tidy(() => {
        const f = (x: TF.Tensor) => tensorAttention(x as TF.Tensor2D, b, t, heads);
        return [
          f(qkv).dataSync(),
          tf
            .grad((x: TF.Tensor) => tf.sum(tf.mul(f(x), w)))(qkv)
            .dataSync(),
        ];
      });
      // The kernels on a shared arena: one thread (kernels), then the pairs split over two (parallel).
      const arena = new SimdArena(
        arenaFloats([b * t * 3 * d, b * t * d, b * heads * t * t, 2 * scratch, b * t * d, b * t * 3 * d]),
        {
          helper: true,
        },
      );
      expect(await arena.helperReady()).toBe(true);
      const [x, out, probs, work, dy, grad] = [
        b * t * 3 * d,
        b * t * d,
        b * heads * t * t,
        2 * scratch,
        b * t * d,
        b * t * 3 * d,
      ].map((n) => arena.alloc(n));
      x.view.set(qkv.dataSync());
      dy.view.set(w.dataSync());
      const run = (k: ParallelKernels) => {
        k.attnFwd(x.offset, out.offset, probs.offset, work.offset, 0, b * heads, t, heads, d);
        k.attnBwd(x.offset, dy.offset, grad.offset, probs.offset, work.offset, 0, b * heads, t, heads, d);
        return [out.view.slice(), grad.view.slice()];
      };
      const [hostOut, hostGrad] = run(arena.kernels);
      const [splitOut, splitGrad] = run(arena.parallel);
      arena.dispose();
      expect(Array.from(splitOut)).toEqual(Array.from(hostOut));
      expect(Array.from(splitGrad)).toEqual(Array.from(hostGrad));
      const worst = (a: ArrayLike<number>, e: ArrayLike<number>) =>
        Math.max(...Array.from(a, (x, i) => Math.abs(x - e[i])));
      expect(hostOut.length).toBe(b * t * d);
      expect(worst(hostOut, refOut)).toBeLessThan(1e-5);
      expect(hostGrad.length).toBe(b * t * 3 * d);
      expect(worst(hostGrad, refGrad)).toBeLessThan(1e-5);
      // The first query sees only itself: its output is its own value vector.
      for (let c = 0; c < d; c++) expect(hostOut[c]).toBeCloseTo(qkv.dataSync()[2 * d + c], 6);
      tf.dispose([qkv, w]);
    },
  );
});

describe('host trunk op', () => {
  /** Value and every weight gradient of sum(logits * up), with the trunk as host op or as tensor ops. */
  function valueAndGrads(m: Transformer, tokens: TF.Tensor2D, up: TF.Tensor, kernels: 'host' | 'tensor') {
    m.trunkKernels = kernels;
    return tf.tidy(() => {
      const r = tf.variableGrads(() => tf.sum(tf.mul(m.forward(tokens), up)) as TF.Scalar, m.variables);
      return [r.value.dataSync(), ...m.variables.map((v) => r.grads[v.name].dataSync())];
    });
  }

  for (const activation of ['gelu', 'relu'] as const) {
    it(`gives the tensor trunk's logits and every weight gradient (${activation}, off-block sizes)`, () => {
      const m = new Transformer(
        tf,
        { vocab: 11, context: 16, width: 16, heads: 2, layers: 2, activation },
        new Rng(3),
        `trunk-${activation}`,
      );
      // Move the layer norms and biases off their initial ones and zeros, so their gradients matter.
      tf.tidy(() => {
        for (const v of m.variables) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, 'float32', 7)));
      });
      const tokens = tf.tensor2d(
        Int32Array.from({ length: 3 * 9 }, (_, i) => (i * 7) % 11),
        [3, 9],
        'int32',
      );
      const up = tf.randomNormal([3, 9, 11], 0, 1, 'float32', 9);
      const reference = valueAndGrads(m, tokens, up, 'tensor');
      const before = tf.memory().numTensors;
      const host = valueAndGrads(m, tokens, up, 'host');
      expect(tf.memory().numTensors).toBe(before);
      host.forEach((values, i) => {
        expect(values.length).toBe(reference[i].length);
        const scale = Math.max(1e-30, ...Array.from(reference[i], Math.abs));
        const worst = Math.max(...Array.from(values, (v, j) => Math.abs(v - reference[i][j])));
        expect(worst / scale, i === 0 ? 'value' : `gradient of weight ${i - 1}`).toBeLessThan(1e-4);
      });
      tf.dispose([tokens, up]);
      m.dispose();
    });
  }

  it.each([false, true])(
    'log-probabilities, entropies (and hidden states: %s) with head and log-softmax on the host: the tensor path’s values and gradients, also after the tape moved on',
    (withHidden) => {
      const m = new Transformer(tf, { ...shape, vocab: 13, context: 16 }, new Rng(6), 'trunk-head');
      tf.tidy(() => {
        for (const v of m.variables) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, 'float32', 8)));
      });
      const tokens = tf.tensor2d(
        Int32Array.from({ length: 3 * 11 }, (_, i) => (i * 5 + 2) % 13),
        [3, 11],
        'int32',
      );
      const [wLogp, wEntropy, wHidden] = [
        tf.randomNormal([3, 10], 0, 1, 'float32', 10),
        tf.randomNormal([3, 10], 0, 1, 'float32', 11),
        tf.randomNormal([3, 10, shape.width], 0, 1, 'float32', 12),
      ];
      /** [logProbs, entropy, hidden, every weight gradient] of sum(logp wLogp + H wEntropy (+ h wHidden)). */
      const run = (kernels: 'host' | 'tensor', between?: () => void) => {
        m.trunkKernels = kernels;
        return tf.tidy(() => {
          let values: Float32Array[] = [];
          const r = tf.variableGrads(() => {
            const { logProbs, entropy, hidden } = sequenceLogProbs(tf, m, tokens, true, withHidden);
            const h = hidden ?? tf.zeros([3, 10, shape.width]);
            values = [logProbs, entropy, h].map((x) => x.dataSync() as Float32Array);
            between?.();
            const loss = tf.add(tf.sum(tf.mul(logProbs, wLogp)), tf.sum(tf.mul(entropy, wEntropy)));
            return tf.add(loss, tf.sum(tf.mul(h, wHidden))) as TF.Scalar;
          }, m.variables);
          return [...values, ...m.variables.map((v) => r.grads[v.name].dataSync() as Float32Array)];
        });
      };
      const reference = run('tensor');
      const before = tf.memory().numTensors;
      const host = run('host');
      // Another forward pass of the same model pushes this one off the tape: the backward pass recomputes it.
      const other = tf.tensor2d(
        Int32Array.from({ length: 2 * 7 }, (_, i) => i % 13),
        [2, 7],
        'int32',
      );
      const recomputed = run('host', () => m.forward(other).dispose());
      expect(tf.memory().numTensors).toBe(before + 1);
      for (const result of [host, recomputed])
        result.forEach((values, i) => {
          expect(values.length).toBe(reference[i].length);
          const scale = Math.max(1e-30, ...Array.from(reference[i], Math.abs));
          const worst = Math.max(...Array.from(values, (v, j) => Math.abs(v - reference[i][j])));
          expect(
            worst / scale,
            ['log-probabilities', 'entropies', 'hidden states'][i] ?? `gradient of weight ${i - 3}`,
          ).toBeLessThan(1e-4);
        });
      expect(Array.from(recomputed[3])).toEqual(Array.from(host[3]));
      tf.dispose([tokens, wLogp, wEntropy, wHidden, other]);
      m.dispose();
    },
  );

  it('refuses a token id outside the vocabulary, naming it, instead of reading past the embedding', () => {
    const m = new Transformer(tf, shape, new Rng(5), 'trunk-bad-token');
    m.trunkKernels = 'host';
    const tokens = tf.tensor2d(Int32Array.of(1, 2, shape.vocab, 3), [1, 4], 'int32');
    expect(() => tf.tidy(() => m.forward(tokens))).toThrow(
      /token id 97 at 2 is outside the vocabulary \(97\)/,
    );
    tf.dispose(tokens);
    m.dispose();
  });

  it('serves batches whose tape fits its memory cap; larger ones take the tensor path', () => {
    const big = { vocab: 97, context: 256, width: 512, heads: 8, layers: 8, activation: 'gelu' as const };
    expect(hostTrunkAvailable(tf, shape, 16 * 32)).toBe(true);
    expect(hostTrunkAvailable(tf, big, 4 * 256)).toBe(true);
    // 64 sequences of 256 tokens at width 512: several GB of activations.
    expect(hostTrunkAvailable(tf, big, 64 * 256)).toBe(false);
    expect(hostTrunkAvailable(tf, { ...shape, width: 30, heads: 3 }, 16)).toBe(false);
  });

  it('recomputes a forward pass that another forward pushed off the tape (same gradients)', () => {
    const m = new Transformer(tf, shape, new Rng(4), 'trunk-recompute');
    const a = tf.tensor2d(
      Int32Array.from({ length: 2 * 10 }, (_, i) => (i * 5) % 97),
      [2, 10],
      'int32',
    );
    const other = tf.tensor2d(
      Int32Array.from({ length: 3 * 6 }, (_, i) => (i * 3) % 97),
      [3, 6],
      'int32',
    );
    const loss = (extra: boolean) =>
      tf.tidy(() => {
        const r = tf.variableGrads(() => {
          const l = tf.mean(tf.square(m.forward(a))) as TF.Scalar;
          // A second forward of the same model, not differentiated: its activations replace a's on the tape.
          if (extra) tf.keep(m.forward(other)).dispose();
          return l;
        }, m.variables);
        return m.variables.map((v) => r.grads[v.name].dataSync());
      });
    const plain = loss(false);
    const recomputed = loss(true);
    recomputed.forEach((g, i) => {
      expect(Array.from(g)).toEqual(Array.from(plain[i]));
    });
    tf.dispose([a, other]);
    m.dispose();
  });
});
