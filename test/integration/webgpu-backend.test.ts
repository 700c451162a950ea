/**
 * The WebGPU backend (Dawn's Node binding + tfjs-backend-webgpu), exercised on SwiftShader, the CPU
 * Vulkan driver Debian's chromium package ships, so the GPU code path runs on every machine and in CI.
 * Every op the nodes use must agree with WebAssembly; a few PPO iterations must give the same losses;
 * `auto` must never pick a software adapter; a missing adapter is a clear error before the run starts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, repoRoot } from '../helpers/graphs.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const VULKAN_LOADERS = [
  '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
  '/usr/lib/aarch64-linux-gnu/libvulkan.so.1',
];
const haveSwiftShader = existsSync(SWIFTSHADER_ICD) && VULKAN_LOADERS.some((f) => existsSync(f));
if (!haveSwiftShader && process.env.CI)
  throw new Error('SwiftShader is missing: .ci/run installs chromium (its Vulkan ICD) and libvulkan1.');

if (haveSwiftShader) {
  // Before Dawn loads: point the Vulkan loader at SwiftShader (this file runs in its own process).
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  const runtimeDir = path.join(tmpdir(), `studio-xdg-${process.pid}`);
  mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR ??= runtimeDir;
}

/** Deterministic inputs: a small LCG in [-1, 1), the same on every backend. */
function values(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}
const t2 = (rows: number, cols: number, seed: number, scale = 1) =>
  tf.tensor2d(values(rows * cols, seed, scale), [rows, cols]);

type OpCase = [name: string, build: () => tf.Tensor];

/** Every op family the node library uses, at the shapes it uses them (MLP layers, attention blocks). */
const OPS: OpCase[] = [
  ['matMul', () => tf.matMul(t2(37, 64, 1), t2(64, 48, 2))],
  ['matMul transposeA', () => tf.matMul(t2(64, 37, 3), t2(64, 48, 4), true, false)],
  ['matMul transposeB', () => tf.matMul(t2(37, 64, 5), t2(48, 64, 6), false, true)],
  [
    'batched matMul (attention scores)',
    () =>
      tf.matMul(
        tf.tensor3d(values(4 * 16 * 32, 7), [4, 16, 32]),
        tf.tensor3d(values(4 * 16 * 32, 8), [4, 16, 32]),
        false,
        true,
      ),
  ],
  [
    'fused matMul + bias + tanh',
    () =>
      tf.fused.matMul({
        a: t2(33, 64, 9),
        b: t2(64, 64, 10),
        bias: tf.tensor1d(values(64, 11)),
        activation: 'relu',
      }),
  ],
  [
    'add/sub/mul/div broadcast',
    () =>
      tf.div(tf.sub(tf.mul(t2(20, 8, 12), t2(1, 8, 13)), t2(20, 1, 14)), tf.add(tf.abs(t2(20, 8, 15)), 0.5)),
  ],
  [
    'tanh, relu, exp, neg, square, abs',
    () =>
      tf.concat(
        [
          tf.tanh(t2(9, 7, 16, 3)),
          tf.relu(t2(9, 7, 17)),
          tf.exp(t2(9, 7, 18, 2)),
          tf.neg(t2(9, 7, 19)),
          tf.square(t2(9, 7, 20)),
          tf.abs(t2(9, 7, 21)),
        ],
        1,
      ),
  ],
  [
    'log, sqrt, rsqrt, sigmoid',
    () => {
      const positive = tf.add(tf.abs(t2(12, 5, 22, 4)), 0.1);
      return tf.concat(
        [tf.log(positive), tf.sqrt(positive), tf.rsqrt(positive), tf.sigmoid(t2(12, 5, 23, 4))],
        1,
      );
    },
  ],
  [
    'softmax, logSoftmax',
    () => tf.concat([tf.softmax(t2(16, 11, 24, 5)), tf.logSoftmax(t2(16, 11, 25, 5))], 1),
  ],
  [
    'sum, mean, max over axes',
    () =>
      tf.concat([
        tf.sum(t2(10, 6, 26), 1),
        tf.mean(t2(10, 6, 27), 1),
        tf.max(t2(10, 6, 28), 1),
        tf.sum(t2(6, 10, 29), 0),
      ]),
  ],
  [
    'moments (layer norm)',
    () => {
      const { mean, variance } = tf.moments(t2(14, 32, 30), -1, true);
      return tf.concat([mean, variance], 1);
    },
  ],
  [
    'oneHot, gather, cast',
    () =>
      tf.concat(
        [
          tf.oneHot(tf.tensor1d([0, 3, 2, 1, 3], 'int32'), 4).cast('float32'),
          tf.gather(t2(7, 4, 31), tf.tensor1d([6, 0, 3, 3, 1], 'int32')),
        ],
        1,
      ),
  ],
  [
    'transpose, reshape, slice, concat, stack, split',
    () => {
      const x = t2(6, 10, 32);
      const [a, b] = tf.split(x, 2, 1);
      return tf.concat(
        [
          tf.reshape(tf.transpose(x), [6, 10]),
          tf.slice(x, [1, 2], [6 - 1, 5]).pad([
            [0, 1],
            [0, 0],
          ]),
          tf.stack([a!, b!], 2).reshape([6, 10]),
        ],
        1,
      );
    },
  ],
  [
    'clipByValue, minimum, maximum, greater, where',
    () => {
      const a = t2(8, 8, 33, 2);
      const b = t2(8, 8, 34, 2);
      return tf.concat(
        [tf.clipByValue(a, -0.8, 0.8), tf.minimum(a, b), tf.maximum(a, b), tf.where(tf.greater(a, b), a, b)],
        1,
      );
    },
  ],
  [
    'sigmoid cross-entropy',
    () => tf.losses.sigmoidCrossEntropy(tf.greater(t2(9, 3, 35), 0).cast('float32'), t2(9, 3, 36, 3)),
  ],
  [
    'gradient of a tanh MLP with a log-softmax loss',
    () => {
      const w1 = tf.variable(t2(4, 16, 37, 0.5));
      const w2 = tf.variable(t2(16, 3, 38, 0.5));
      const x = t2(25, 4, 39);
      const labels = tf
        .oneHot(
          tf.tensor1d(
            Array.from({ length: 25 }, (_, i) => i % 3),
            'int32',
          ),
          3,
        )
        .cast('float32');
      const { grads } = tf.variableGrads(
        () =>
          tf.neg(
            tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(tf.matMul(tf.tanh(tf.matMul(x, w1)), w2))), 1)),
          ) as tf.Scalar,
      );
      const flat = tf.concat([grads[w1.name]!.reshape([-1]), grads[w2.name]!.reshape([-1])]);
      tf.dispose([w1, w2, grads]);
      return flat;
    },
  ],
];

async function evaluate(build: () => tf.Tensor): Promise<Float32Array> {
  const result = tf.tidy(build);
  const data = (await result.data()) as Float32Array;
  result.dispose();
  return Float32Array.from(data);
}

describe.skipIf(!haveSwiftShader)('WebGPU backend on SwiftShader', () => {
  it('auto never chooses a software adapter', async () => {
    const backend = await startBackend('auto');
    expect(backend.name).not.toBe('webgpu');
  }, 120_000);

  it('starts on request and names the adapter', async () => {
    const backend = await startBackend('webgpu');
    expect(backend.name).toBe('webgpu');
    expect(backend.detail).toMatch(/SwiftShader/i);
    expect(backend.detail).toMatch(/software adapter/);
  }, 120_000);

  it('agrees with WebAssembly on every op family the nodes use', async () => {
    const worst: string[] = [];
    for (const [name, build] of OPS) {
      await startBackend('wasm');
      const expected = await evaluate(build);
      await startBackend('webgpu');
      const before = tf.memory().numTensors;
      const actual = await evaluate(build);
      expect(tf.memory().numTensors, `${name} leaked tensors`).toBe(before);
      expect(actual.length, name).toBe(expected.length);
      let maxError = 0;
      for (let i = 0; i < expected.length; i++) {
        const error = Math.abs(actual[i]! - expected[i]!) / (1e-3 + Math.abs(expected[i]!));
        maxError = Math.max(maxError, error);
      }
      worst.push(`${name}: ${maxError.toExponential(1)}`);
      // float32 on both; different summation orders: relative error under 1e-3 (absolute floor 1e-6).
      expect(maxError, name).toBeLessThan(1e-3);
    }
    console.log(`max relative error per op family (webgpu vs wasm):\n  ${worst.join('\n  ')}`);
  }, 300_000);

  it('trains PPO on CartPole with the same losses as WebAssembly, without leaking tensors', async () => {
    // The tensor update path: the one that runs on the GPU (small MLPs train on the host by default).
    const graph = loadTemplate('cartpole-ppo');
    graph.nodes = graph.nodes.map((n) =>
      n.id === 'rollout'
        ? { ...n, params: { ...n.params, stepsPerEnv: 32 } }
        : n.id === 'ppo'
          ? { ...n, params: { ...n.params, epochs: 2, minibatches: 2, updateOn: 'tensor' } }
          : n,
    );
    const run = async (backend: 'wasm' | 'webgpu') => {
      await startBackend(backend);
      const before = tf.memory().numTensors;
      const result = await executeRun({ graph, registry: createRegistry(), iterations: 2, backend });
      expect(result.status).toBe('finished');
      expect(tf.memory().numTensors, `${backend} leaked tensors`).toBe(before);
      return result;
    };
    const wasm = await run('wasm');
    const gpu = await run('webgpu');
    expect(gpu.backend).toBe('webgpu');
    for (const name of [
      'ppo/policy_loss',
      'ppo/value_loss',
      'ppo/entropy',
      'ppo/grad_norm',
      'rollout/episode_return_mean',
    ]) {
      const a = wasm.metrics.at(-1)!.metrics[name]!;
      const b = gpu.metrics.at(-1)!.metrics[name]!;
      expect(Math.abs(a - b), `${name}: wasm ${a} vs webgpu ${b}`).toBeLessThanOrEqual(
        1e-3 * Math.max(1, Math.abs(a)),
      );
    }
  }, 300_000);
});

/** SFT then GRPO with the transformer agent on the calculator task, tiny: the LLM path on each backend. */
function llmGraph(backend: 'wasm' | 'webgpu') {
  const node = (id: string, type: string, params: Record<string, unknown>) => ({
    id,
    type,
    typeVersion: 1,
    params,
    position: { x: 0, y: 0 },
  });
  const edge = (from: string, fromPort: string, to: string, toPort: string) => ({
    from: { node: from, port: fromPort },
    to: { node: to, port: toPort },
  });
  return {
    format: 'agent-rl-studio/graph',
    version: 1,
    name: 'LLM on two backends',
    seed: 3,
    run: { iterations: 2, checkpointEvery: 0, backend },
    nodes: [
      node('calc', 'env.calculator-tool', {}),
      node('agent', 'agent.llm', { layers: 1, width: 32, heads: 2, context: 80, activation: 'relu' }),
      node('sft', 'trainer.sft', { iterations: 1, stepsPerIteration: 1, batchSize: 8, datasetSize: 32 }),
      node('rollout', 'rollout.group', {
        promptsPerIteration: 2,
        groupSize: 2,
        maxNewTokens: 10,
        startIteration: 1,
        evalEvery: 0,
      }),
      node('credit', 'credit.grpo', {}),
      node('grpo', 'trainer.grpo', { lr: 1e-3, beta: 0.04, minibatches: 2, epochs: 1 }),
    ],
    edges: [
      edge('agent', 'policy', 'sft', 'policy'),
      edge('calc', 'env', 'sft', 'env'),
      edge('calc', 'env', 'rollout', 'env'),
      edge('agent', 'policy', 'rollout', 'policy'),
      edge('rollout', 'trajectories', 'credit', 'trajectories'),
      edge('agent', 'policy', 'grpo', 'policy'),
      edge('rollout', 'trajectories', 'grpo', 'trajectories'),
      edge('credit', 'advantages', 'grpo', 'advantages'),
    ],
  };
}

describe.skipIf(!haveSwiftShader)('the LLM agent on WebGPU (SwiftShader)', () => {
  it('SFT and GRPO steps give the losses of WebAssembly, without leaking tensors', async () => {
    const run = async (backend: 'wasm' | 'webgpu') => {
      await startBackend(backend);
      const before = tf.memory().numTensors;
      const result = await executeRun({ graph: llmGraph(backend), registry: createRegistry() });
      expect(result.status, result.error?.message).toBe('finished');
      expect(result.backend).toBe(backend);
      expect(tf.memory().numTensors, `${backend} leaked tensors`).toBe(before);
      return result.metrics;
    };
    const wasm = await run('wasm');
    const gpu = await run('webgpu');
    const compare = (iteration: number, name: string) => {
      const a = wasm[iteration]!.metrics[name]!;
      const b = gpu[iteration]!.metrics[name]!;
      expect(Number.isFinite(a), `${name} at ${iteration}`).toBe(true);
      // float32 on both; sampling on the host from the same logits up to ~1e-5: same tokens, close losses.
      expect(
        Math.abs(a - b),
        `${name} at iteration ${iteration}: wasm ${a} vs webgpu ${b}`,
      ).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(a)));
    };
    compare(0, 'sft/sft_loss');
    for (const iteration of [1]) {
      compare(iteration, 'grpo/policy_loss');
      compare(iteration, 'grpo/kl');
      compare(iteration, 'grpo/entropy');
    }
  }, 300_000);
});

describe('WebGPU backend without an adapter', () => {
  it('refuses to start the run, naming the backend and how to get an adapter', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'studio-nogpu-'));
    const failure = await promisify(execFile)(
      process.execPath,
      [
        path.join(repoRoot, 'bin', 'agent-rl-studio.js'),
        'train',
        path.join(repoRoot, 'templates', 'cartpole-ppo.json'),
        '--backend',
        'webgpu',
        '--iterations',
        '1',
        '--out',
        out,
      ],
      { env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' } },
    ).catch((e: { code: number; stderr: string }) => e);
    expect('code' in failure && failure.code).toBe(1);
    expect((failure as { stderr: string }).stderr).toMatch(
      /Backend 'webgpu' cannot start: .*(no GPU adapter|not available)/,
    );
    // Nothing half-started: no metrics, no checkpoint.
    const left = await readdir(out);
    expect(left.filter((f) => f === 'metrics.jsonl' || f === 'checkpoints')).toEqual([]);
  }, 120_000);
});
