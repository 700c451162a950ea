/**
 * The transformer behind agent.llm: causal attention, the KV cache agreeing with full re-forward
 * generation, sequence log-probabilities as sums of token log-probabilities, sampling rules, tensors freed.
 */
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateBatch, TokenSampler } from '../../nodes/agent/llm/generate.ts';
import { parameterCount, Transformer } from '../../nodes/agent/llm/model.ts';
import { LlmPolicy } from '../../nodes/agent/llm/policy.ts';
import { CharTokenizer } from '../../nodes/agent/llm/tokenizer.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
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

  it('KV-cache generation gives the same tokens and log-probs as full re-forward generation', async () => {
    const model = new Transformer(tf, shape, new Rng(3), 'kv');
    const tok = new CharTokenizer();
    const contexts = ['Q 347*28\n', 'hi', 'a longer prompt\n'].map((s) => tok.encode(s));
    const options = { maxNewTokens: 12, temperature: 1, stop: ['}'] };
    const decode = (t: ArrayLike<number>) => tok.decode(t);
    const before = tf.memory().numTensors;
    const cached = await generateBatch(tf, model, contexts, options, new Rng(9), decode, true);
    expect(tf.memory().numTensors).toBe(before);
    const full = await generateBatch(tf, model, contexts, options, new Rng(9), decode, false);
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < contexts.length; i++) {
      expect(Array.from(cached[i].tokens)).toEqual(Array.from(full[i].tokens));
      expect(cached[i].finish).toBe(full[i].finish);
      cached[i].logProbs.forEach((lp, k) => {
        expect(lp).toBeCloseTo(full[i].logProbs[k], 4);
      });
    }
    // A batch row gives the same continuation as that prompt alone (padding is invisible).
    const alone = await generateBatch(tf, model, [contexts[1]], options, new Rng(5), decode, true);
    const aloneFull = await generateBatch(tf, model, [contexts[1]], options, new Rng(5), decode, false);
    expect(Array.from(alone[0].tokens)).toEqual(Array.from(aloneFull[0].tokens));
    model.dispose();
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
