/**
 * LoRA on Hugging Face checkpoints and generation: zero-initialised adapters give the base model; training
 * moves only the adapters; merging gives the adapted logits; adapters and reference survive a checkpoint;
 * cached and uncached generation agree, sampling log-probabilities equal the trainer's log-probabilities
 * of the same tokens, stop strings cut the text, and no tensor is left behind.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterSet } from '../../nodes/agent/hf/model.ts';
import { HfPolicy, readHfCheckpoint } from '../../nodes/agent/hf/policy.ts';
import { readCheckpointTensors } from '../../nodes/agent/hf/safetensors.ts';
import { LLAMA_MODULES } from '../../nodes/agent/hf/weights.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { FIXTURES, writeFixture } from '../fixtures/hf/make-fixtures.ts';

let tf: Tf;
let root: string;

beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
  root = await mkdtemp(join(tmpdir(), 'hf-lora-'));
  await writeFixture(join(root, 'llama'), FIXTURES['llama-gqa']);
  await writeFixture(join(root, 'gpt2'), FIXTURES.gpt2);
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

let serial = 0;
async function load(folder: string, targets: string[], rank = 4): Promise<HfPolicy> {
  const checkpoint = await readHfCheckpoint(folder);
  return new HfPolicy(
    tf,
    `lora-${serial++}`,
    checkpoint,
    { lora: { rank, alpha: 8, targets }, context: 96, chatTemplate: true },
    new Rng(5),
  );
}

const SEQ = [3, 280, 41, 300, 7, 19, 260, 88, 12, 5];

async function logitsOf(policy: HfPolicy, set: AdapterSet, ids = SEQ): Promise<Float32Array> {
  const out = tf.tidy(() =>
    policy.model.logits(
      tf.tensor2d(ids, [1, ids.length], 'int32'),
      Int32Array.from(ids, (_, j) => j),
      undefined,
      set,
    ),
  );
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Minimise -sum log pi(SEQ) over the adapters with Adam; returns the losses. */
async function train(policy: HfPolicy, steps: number, counts: number[] = []): Promise<number[]> {
  const adam = new Adam(tf, policy.variables);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { value, grads } = tf.variableGrads(() => {
      const { logProbs } = policy.tokenLogProbs(tf.tensor2d(SEQ, [1, SEQ.length], 'int32'));
      return tf.neg(tf.sum(logProbs)) as TF.Scalar;
    }, policy.variables);
    losses.push(((await value.data()) as Float32Array)[0]);
    await adam.apply(
      policy.variables.map((v) => grads[v.name]),
      0.01,
    );
    tf.dispose([value, ...Object.values(grads)]);
    counts.push(tf.memory().numTensors);
  }
  return losses;
}

describe('LoRA', () => {
  it('starts at the base model, trains only the adapters, and merges to the same logits', async () => {
    const policy = await load(join(root, 'llama'), [...LLAMA_MODULES]);
    const base = await logitsOf(policy, 'base');
    expect(Array.from(await logitsOf(policy, 'policy'))).toEqual(Array.from(base));
    expect(policy.variables.length).toBe(2 * 2 * 7);

    const counts: number[] = [];
    const losses = await train(policy, 6, counts);
    expect(losses[5]).toBeLessThan(losses[0] - 1);
    // No tensor accumulates across training steps.
    expect(new Set(counts.slice(1)).size).toBe(1);
    // Only adapters changed: the base forward pass is bit for bit what it was...
    expect(Array.from(await logitsOf(policy, 'base'))).toEqual(Array.from(base));
    const adapted = await logitsOf(policy, 'policy');
    expect(maxDiff(adapted, base)).toBeGreaterThan(0.05);
    // ...and so is the frozen reference, until it is reset to the current adapters.
    expect(Array.from(await logitsOf(policy, 'reference'))).toEqual(Array.from(base));
    policy.resetReference();
    expect(Array.from(await logitsOf(policy, 'reference'))).toEqual(Array.from(adapted));

    // Merged weights: W + alpha/r A B in the checkpoint's layout; a plain model of them gives the same logits.
    const merged = join(root, 'merged');
    await policy.exportMerged(merged);
    const original = await readCheckpointTensors(join(root, 'llama'));
    const written = await readCheckpointTensors(merged);
    for (const [name, t] of original) {
      const changed = maxDiff(written.get(name)?.data ?? [], t.data) > 0;
      expect(changed, name).toBe(/_proj\.weight$/.test(name));
    }
    const plain = await load(merged, []);
    expect(plain.variables.length).toBe(0);
    expect(maxDiff(await logitsOf(plain, 'base'), adapted)).toBeLessThan(1e-4);
    plain.dispose();
    policy.dispose();
  });

  it('saves and restores adapters and reference with a checkpoint (GPT-2 with Llama target names)', async () => {
    const policy = await load(join(root, 'gpt2'), ['q_proj', 'down_proj']);
    await train(policy, 2);
    policy.resetReference();
    await train(policy, 1);
    const state = await policy.model.saveArrays();
    const restored = await load(join(root, 'gpt2'), ['q_proj', 'down_proj']);
    restored.model.loadArrays(state);
    for (const set of ['policy', 'reference'] as const) {
      expect(Array.from(await logitsOf(restored, set))).toEqual(Array.from(await logitsOf(policy, set)));
    }
    expect(() => restored.model.loadArrays({})).toThrow(/adapter state lora\.0\.c_attn\.A: expected/);
    policy.dispose();
    restored.dispose();
  });
});

describe('generation', () => {
  it('cached and uncached sampling agree, and sampling log-probs equal the trainer’s', async () => {
    const policy = await load(join(root, 'llama'), ['q_proj', 'v_proj']);
    await train(policy, 2);
    const contexts = [Int32Array.from([256, 31, 40, 77]), Int32Array.from([256, 5, 300, 12, 9, 60, 2])];
    const options = { maxNewTokens: 8, temperature: 1, topK: 50, topP: 0.95, stop: [] };
    const before = tf.memory().numTensors;
    const cached = await policy.generateTokens(contexts, options, new Rng(9));
    expect(tf.memory().numTensors).toBe(before);
    const uncached = await policy.generateTokens(contexts, options, new Rng(9), 'policy', false);
    for (let i = 0; i < 2; i++) {
      expect(Array.from(cached[i].tokens ?? [])).toEqual(Array.from(uncached[i].tokens ?? []));
      expect(maxDiff(cached[i].logProbs ?? [], uncached[i].logProbs ?? [])).toBeLessThan(1e-4);
    }
    // log pi of each sampled token under the trainer's differentiable path, on the unpadded sequence.
    for (let i = 0; i < 2; i++) {
      const tokens = cached[i].tokens as Int32Array;
      const full = [...contexts[i], ...tokens];
      const lp = tf.tidy(() => policy.tokenLogProbs(tf.tensor2d(full, [1, full.length], 'int32')).logProbs);
      const data = ((await lp.data()) as Float32Array).subarray(contexts[i].length - 1);
      lp.dispose();
      expect(maxDiff(data, cached[i].logProbs ?? [])).toBeLessThan(1e-4);
    }
    policy.dispose();
  });

  it('builds prompts with the chat template, cuts at stop strings and keeps earlier turns’ tokens', async () => {
    const policy = await load(join(root, 'llama'), ['q_proj']);
    const prompt = 'What is 12*7?';
    const promptTokens = policy.encode(prompt, true);
    expect(policy.tokenizer.decode(promptTokens)).toBe('user\nWhat is 12*7?\nassistant\n');
    expect(policy.tokenText(promptTokens[0])).toBe('<|im_start|>');
    // Same seed with and without a stop string taken from the free continuation: the stopped text is the
    // free text cut just after the stop string's first occurrence.
    const free = await policy.generate([prompt], { maxNewTokens: 12, temperature: 1, stop: [] }, new Rng(2));
    expect(free[0].finish).toBe('length');
    const stop = free[0].text.slice(1, 3);
    const cutAt = free[0].text.indexOf(stop) + stop.length;
    const [first] = await policy.generate(
      [prompt],
      { maxNewTokens: 12, temperature: 1, stop: [stop] },
      new Rng(2),
    );
    expect(first.finish).toBe('stop');
    expect(first.text).toBe(free[0].text.slice(0, cutAt));
    expect(Array.from(free[0].tokens as Int32Array).slice(0, first.tokens?.length)).toEqual(
      Array.from(first.tokens as Int32Array),
    );
    // The next turn's context starts with the first turn's tokens as generated, then the reply encoded alone.
    const reply = '\n= 84\n';
    const next = policy.contextTokens(prompt + first.text + reply);
    expect(Array.from(next)).toEqual([
      ...promptTokens,
      ...(first.tokens as Int32Array),
      ...policy.encode(reply, false),
    ]);
    policy.dispose();
  });
});
