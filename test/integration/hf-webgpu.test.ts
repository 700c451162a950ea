/**
 * agent.hf-llm on WebGPU (Dawn on SwiftShader, the CPU Vulkan driver, so the GPU code path runs on every
 * machine): the fixture's logits agree with WebAssembly, and GRPO through the calculator environment runs
 * end to end without leaking tensors.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HfPolicy, readHfCheckpoint } from '../../nodes/agent/hf/policy.ts';
import { createRegistry } from '../../nodes/index.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { FIXTURES, writeFixture } from '../fixtures/hf/make-fixtures.ts';

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

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-webgpu-'));
  await writeFixture(join(root, 'llama'), FIXTURES['llama-gqa']);
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function lastLogits(backend: 'wasm' | 'webgpu'): Promise<Float32Array> {
  await startBackend(backend);
  const policy = new HfPolicy(
    tf,
    `hf-${backend}`,
    await readHfCheckpoint(join(root, 'llama')),
    { lora: { rank: 2, alpha: 4, targets: ['q_proj'] }, context: 64, chatTemplate: true },
    new Rng(1),
  );
  const ids = [3, 280, 41, 300, 7, 19, 260, 88];
  const out = tf.tidy(() =>
    policy.model.logits(
      tf.tensor2d(ids, [1, ids.length], 'int32'),
      Int32Array.from(ids, (_, j) => j),
      undefined,
      'policy',
    ),
  );
  const data = (await out.data()) as Float32Array;
  out.dispose();
  policy.dispose();
  return data;
}

describe.skipIf(!haveSwiftShader)('agent.hf-llm on WebGPU (SwiftShader)', () => {
  it('gives the logits of WebAssembly', async () => {
    const wasm = await lastLogits('wasm');
    const gpu = await lastLogits('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    let diff = 0;
    for (let i = 0; i < wasm.length; i++) diff = Math.max(diff, Math.abs(wasm[i] - gpu[i]));
    expect(diff).toBeLessThan(1e-3);
  }, 240_000);

  it('runs GRPO through the calculator environment end to end', async () => {
    await startBackend('webgpu');

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
    const graph = {
      format: 'agent-rl-studio/graph',
      version: 1,
      name: 'GRPO on a Hugging Face checkpoint (WebGPU)',
      seed: 1,
      run: { iterations: 1, checkpointEvery: 0, backend: 'webgpu' },
      nodes: [
        node('env', 'env.calculator-tool', { digitsA: 2, digitsB: 1, maxTurns: 1 }),
        node('agent', 'agent.hf-llm', {
          modelPath: join(root, 'llama'),
          loraRank: 2,
          context: 96,
          memoryBatch: 8,
        }),
        node('rollout', 'rollout.group', {
          promptsPerIteration: 2,
          groupSize: 2,
          maxNewTokens: 6,
          evalEvery: 0,
        }),
        node('credit', 'credit.grpo', {}),
        node('grpo', 'trainer.grpo', { lr: 0.01, beta: 0.01, epochs: 1, minibatches: 1 }),
      ],
      edges: [
        edge('env', 'env', 'rollout', 'env'),
        edge('agent', 'policy', 'rollout', 'policy'),
        edge('rollout', 'trajectories', 'credit', 'trajectories'),
        edge('rollout', 'trajectories', 'grpo', 'trajectories'),
        edge('credit', 'advantages', 'grpo', 'advantages'),
        edge('agent', 'policy', 'grpo', 'policy'),
      ],
    };
    const before = tf.memory().numTensors;
    const result = await executeRun({ graph, registry: createRegistry(), backend: 'webgpu' });
    expect(result.error).toBeUndefined();
    expect(result.backend).toBe('webgpu');
    expect(result.metrics).toHaveLength(1);
    for (const record of result.metrics) {
      expect(record.metrics['grpo/agent_tokens']).toBeGreaterThan(0);
      expect(Number.isFinite(record.metrics['grpo/policy_loss'])).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000);
});
