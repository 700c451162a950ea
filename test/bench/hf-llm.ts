/**
 * agent.hf-llm at SmolLM-135M's shape (30 layers, hidden 576, 9 heads / 3 KV heads, intermediate 1536,
 * vocab 49152; random weights written as a real BF16 safetensors checkpoint): generation tokens/s with the
 * KV cache (and, for comparison, re-forwarding the prefix) and LoRA training tokens/s (forward, backward
 * into the adapters, host Adam), on the WebAssembly backend (or `--backend`). Few tokens, so it runs in a
 * few minutes on two cores.
 *
 *   npx tsx test/bench/hf-llm.ts [--backend wasm|webgpu] [--new-tokens 8] [--batch 4]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type * as TF from '@tensorflow/tfjs';
import { baseParameterCount } from '../../nodes/agent/hf/config.ts';
import { HfPolicy, readHfCheckpoint } from '../../nodes/agent/hf/policy.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { BackendName } from '../../src-main/engine/graph/types.ts';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { writeFixture } from '../fixtures/hf/make-fixtures.ts';
import { fmt, type Section } from './table.ts';

export interface HfBenchOptions {
  backend: BackendName;
  /** Prompts generated together. */
  batch: number;
  promptTokens: number;
  newTokens: number;
  /** Tokens per training sequence. */
  trainTokens: number;
  trainSteps: number;
}

export async function benchHfLlm(o: HfBenchOptions): Promise<Section> {
  const { tf, name: backend } = await startBackend(o.backend);
  const folder = await mkdtemp(join(tmpdir(), 'hf-bench-'));
  try {
    let started = performance.now();
    await writeFixture(folder, { kind: 'smollm-135m', dtype: 'BF16', shards: 2, chat: false });
    const writeSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const checkpoint = await readHfCheckpoint(folder);
    const policy = new HfPolicy(
      tf,
      'bench',
      checkpoint,
      { lora: { rank: 8, alpha: 16, targets: ['q_proj', 'v_proj'] }, context: 2048, chatTemplate: false },
      new Rng(1),
    );
    const loadSeconds = (performance.now() - started) / 1000;
    const rng = new Rng(2);
    const prompts = Array.from({ length: o.batch }, () =>
      Int32Array.from({ length: o.promptTokens }, () => rng.int(300)),
    );
    const options = { maxNewTokens: o.newTokens, temperature: 1, stop: [] };
    const timeGeneration = async (useCache: boolean) => {
      const t0 = performance.now();
      const out = await policy.generateTokens(prompts, options, new Rng(3), 'policy', useCache);
      const seconds = (performance.now() - t0) / 1000;
      return { seconds, tokens: out.reduce((s, c) => s + (c.tokens?.length ?? 0), 0) };
    };
    await timeGeneration(true); // warm-up: kernels compiled, buffers allocated
    const cached = await timeGeneration(true);
    const uncached = await timeGeneration(false);

    const adam = new Adam(tf, policy.variables);
    const sequence = Int32Array.from({ length: o.batch * o.trainTokens }, () => rng.int(300));
    const step = async () => {
      const t0 = performance.now();
      const { value, grads } = tf.variableGrads(() => {
        const { logProbs } = policy.tokenLogProbs(tf.tensor2d(sequence, [o.batch, o.trainTokens], 'int32'));
        return tf.neg(tf.mean(logProbs)) as TF.Scalar;
      }, policy.variables);
      await value.data();
      await adam.apply(
        policy.variables.map((v) => grads[v.name]),
        1e-4,
        1,
      );
      tf.dispose([value, ...Object.values(grads)]);
      return (performance.now() - t0) / 1000;
    };
    await step(); // warm-up
    let trainSeconds = 0;
    for (let s = 0; s < o.trainSteps; s++) trainSeconds += await step();
    const trainTokens = o.trainSteps * o.batch * (o.trainTokens - 1);
    const parameters = baseParameterCount(checkpoint.config);
    const adapterValues = policy.model.adapterParameterCount();
    policy.dispose();
    return {
      title: `agent.hf-llm at SmolLM-135M shape (${(parameters / 1e6).toFixed(1)}M parameters, LoRA r=8 on q,v: ${adapterValues.toLocaleString('en-US')} values) on ${backend}`,
      header: ['measure', 'tokens', 'seconds', 'tokens/s'],
      rows: [
        [
          `generation, KV cache (batch ${o.batch}, prompt ${o.promptTokens})`,
          String(cached.tokens),
          fmt(cached.seconds, 2),
          fmt(cached.tokens / cached.seconds, 1),
        ],
        [
          'generation, re-forward of the prefix per token',
          String(uncached.tokens),
          fmt(uncached.seconds, 2),
          fmt(uncached.tokens / uncached.seconds, 1),
        ],
        [
          `LoRA training (batch ${o.batch} x ${o.trainTokens} tokens, ${o.trainSteps} steps)`,
          String(trainTokens),
          fmt(trainSeconds, 2),
          fmt(trainTokens / trainSeconds, 1),
        ],
      ],
      notes: [
        `checkpoint written in ${writeSeconds.toFixed(1)} s (BF16, 2 shards), read and built in ${loadSeconds.toFixed(1)} s`,
      ],
    };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'wasm' },
      batch: { type: 'string', default: '4' },
      'new-tokens': { type: 'string', default: '8' },
    },
  });
  const { formatSection } = await import('./table.ts');
  const section = await benchHfLlm({
    backend: values.backend as BackendName,
    batch: Number(values.batch),
    promptTokens: 16,
    newTokens: Number(values['new-tokens']),
    trainTokens: 32,
    trainSteps: 2,
  });
  console.log(formatSection(section));
}
