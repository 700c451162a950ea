/**
 * Hugging Face checkpoints (agent.hf-llm): the fixtures' formats are read back, logits agree with an
 * independent PyTorch implementation (float64) of GPT-2, Llama with grouped-query attention and Qwen2, with
 * and without the key/value cache, and left padding does not change a row's logits.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as TF from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvCache } from '../../nodes/agent/hf/model.ts';
import { HfPolicy, readHfCheckpoint } from '../../nodes/agent/hf/policy.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { FIXTURES, writeFixture } from '../fixtures/hf/make-fixtures.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '../fixtures/hf/reference_logits.py');
/** float32 (tfjs) against float64 (torch): logits of size ~1-10 agree to this many units (measured: at most 4e-6). */
const TOLERANCE = 5e-5;

let tf: Tf;
let root: string;
const folders: Record<string, string> = {};

async function torchAvailable(): Promise<string | undefined> {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  try {
    await promisify(execFile)(PYTHON, ['-c', 'import torch']);
    return undefined;
  } catch {
    return 'python3-torch is not installed';
  }
}
const missingTorch = await torchAvailable();
if (missingTorch && process.env.CI)
  throw new Error(`the PyTorch reference is required in CI: ${missingTorch}`);

beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
  root = await mkdtemp(join(tmpdir(), 'hf-fixtures-'));
  for (const [name, spec] of Object.entries(FIXTURES)) {
    folders[name] = join(root, name);
    await writeFixture(folders[name], spec);
  }
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

let references: Promise<Record<string, number[][][]>> | undefined;

/** The PyTorch logits of SEQUENCES for every fixture, from one Python process. */
async function reference(folder: string): Promise<number[][][]> {
  references ??= promisify(execFile)(
    PYTHON,
    [SCRIPT, JSON.stringify(Object.fromEntries(Object.values(folders).map((f) => [f, SEQUENCES])))],
    { maxBuffer: 64 * 2 ** 20 },
  ).then(({ stdout }) => JSON.parse(stdout) as Record<string, number[][][]>);
  return (await references)[folder];
}

async function load(name: string): Promise<HfPolicy> {
  const checkpoint = await readHfCheckpoint(folders[name]);
  return new HfPolicy(
    tf,
    `hf-${name}`,
    checkpoint,
    { lora: { rank: 4, alpha: 8, targets: [] }, context: 128, chatTemplate: true },
    new Rng(1),
  );
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const SEQUENCES = [
  [5, 77, 260, 31, 300, 12, 9],
  [300, 2, 45, 45, 118, 17, 64, 250, 3, 99, 120, 7],
];

describe.each(Object.keys(FIXTURES))('%s fixture', (name) => {
  it.skipIf(missingTorch !== undefined)(
    `logits equal the PyTorch reference, full forward and token by token with the KV cache (${missingTorch ?? 'torch found'})`,
    async () => {
      const policy = await load(name);
      const expected = await reference(folders[name]);
      const v = policy.model.config.vocab;
      for (const [s, ids] of SEQUENCES.entries()) {
        const t = ids.length;
        const positions = Int32Array.from(ids, (_, j) => j);
        const full = tf.tidy(() =>
          policy.model.logits(tf.tensor2d(ids, [1, t], 'int32'), positions, undefined, 'policy'),
        );
        const fullData = (await full.data()) as Float32Array;
        full.dispose();
        const flat = expected[s].flat();
        expect(flat.length).toBe(t * v);
        expect(maxDiff(fullData, flat)).toBeLessThan(TOLERANCE);
        // Not vacuous: the logits spread over several units.
        expect(Math.max(...flat) - Math.min(...flat)).toBeGreaterThan(1);
        // Cached: a prefill of 3 tokens, then one token at a time.
        const cache: KvCache = policy.model.emptyCache(1);
        const prefill = 3;
        const steps: TF.Tensor2D[] = [
          tf.tidy(() =>
            policy.model.lastLogits(
              tf.tensor2d(ids.slice(0, prefill), [1, prefill], 'int32'),
              positions.slice(0, prefill),
              new Float32Array(prefill),
              'policy',
              cache,
            ),
          ),
        ];
        for (let j = prefill; j < t; j++) {
          steps.push(
            tf.tidy(() =>
              policy.model.lastLogits(
                tf.tensor2d([ids[j]], [1, 1], 'int32'),
                Int32Array.of(j),
                new Float32Array(1),
                'policy',
                cache,
              ),
            ),
          );
        }
        for (const [k, step] of steps.entries()) {
          const position = prefill - 1 + k;
          const got = (await step.data()) as Float32Array;
          expect(maxDiff(got, expected[s][position])).toBeLessThan(TOLERANCE);
          step.dispose();
        }
        for (const x of [...cache.keys, ...cache.values]) x.dispose();
      }
      policy.dispose();
    },
  );

  it('a left-padded row in a batch has the same last logits as alone', async () => {
    const policy = await load(name);
    const [short, long] = SEQUENCES;
    const pad = long.length - short.length;
    const ids = [...new Array(pad).fill(0), ...short, ...long];
    const positions = Int32Array.from([
      ...new Array(pad).fill(0),
      ...short.map((_, j) => j),
      ...long.map((_, j) => j),
    ]);
    const bias = new Float32Array(2 * long.length);
    bias.fill(-1e9, 0, pad);
    const batched = tf.tidy(() =>
      policy.model.lastLogits(tf.tensor2d(ids, [2, long.length], 'int32'), positions, bias, 'policy'),
    );
    const alone = tf.tidy(() =>
      policy.model.lastLogits(
        tf.tensor2d(short, [1, short.length], 'int32'),
        Int32Array.from(short, (_, j) => j),
        undefined,
        'policy',
      ),
    );
    const [b, a] = [(await batched.data()) as Float32Array, (await alone.data()) as Float32Array];
    expect(maxDiff(b.subarray(0, a.length), a)).toBeLessThan(1e-4);
    tf.dispose([batched, alone]);
    policy.dispose();
  });
});
