/**
 * The LLM agent's benchmark (issues 3 and 10): the calculator headline run (SFT then GRPO from random
 * weights, with the SFT-only figure and the no-tool baseline), and tokens/s of the default-size transformer
 * (training; generation with and without the KV cache) next to the PyTorch reference of the same shape run
 * in the same process tree (`/work/shared/reference/transformer_tokens_torch.py`, Debian's python3-torch).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type * as TF from '@tensorflow/tfjs';
import { cachedDecodePath, type DecodePath, generateBatch } from '../../nodes/agent/llm/generate.ts';
import { LlmPolicy } from '../../nodes/agent/llm/policy.ts';
import { createRegistry } from '../../nodes/index.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { BackendName, GraphFile } from '../../src-main/engine/graph/types.ts';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { enableKernelHelpers } from '../../src-main/engine/nn/kernel-helper.ts';
import { enableFusedMultiplyAdd } from '../../src-main/engine/nn/wasm-simd.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, repoRoot } from '../helpers/graphs.ts';
import { fmt, type Section } from './table.ts';

const run = promisify(execFile);

export interface LlmBenchOptions {
  seeds?: number[];
  skipReference?: boolean;
  /** Skip the (long) headline training runs; only measure tokens/s. */
  speedOnly?: boolean;
}

export const DEFAULT_SHAPE = { layers: 4, width: 128, heads: 4, context: 128, activation: 'gelu' as const };
const BATCH = 16;
const PROMPT = 32;
const NEW_TOKENS = 64;

export interface TokenRates {
  trainTokensPerSecond: number;
  /** The KV-cached path generation takes by default on this backend (host kernels on the CPU backends). */
  generateKvTokensPerSecond: number;
  defaultPath: DecodePath;
  /** The KV-cached math as tensor ops. */
  generateKvTensorTokensPerSecond: number;
  generateFullTokensPerSecond: number;
  parameters: number;
}

/** A larger preset for GPUs: 8 layers x 512 wide, context 256 (about 25M parameters). */
export const LARGE_SHAPE = { layers: 8, width: 512, heads: 8, context: 256, activation: 'gelu' as const };

export interface TokenRateOptions {
  backend?: BackendName;
  shape?: typeof DEFAULT_SHAPE;
  /** Timed training steps (after four warm-up steps). */
  trainSteps?: number;
  newTokens?: number;
  /** Sequences per step (default 16, the reference's). */
  batch?: number;
}

/** Our tokens/s on the reference's protocol: batch 16 x context training steps; 32-token prompts + new tokens. */
export async function measureTokenRates(o: TokenRateOptions = {}): Promise<TokenRates> {
  const shape = o.shape ?? DEFAULT_SHAPE;
  const newTokens = o.newTokens ?? NEW_TOKENS;
  const batch = o.batch ?? BATCH;
  const { tf } = await startBackend(o.backend ?? 'wasm');
  const rng = new Rng(0);
  const policy = new LlmPolicy(tf, 'bench', shape, rng);
  const vocab = policy.tokenizer.vocabSize;
  const trainTokensPerSecond = await trainRate(tf, policy, batch, o.trainSteps ?? 8, rng);
  let started = 0;
  const prompts = Array.from({ length: batch }, () =>
    Int32Array.from({ length: PROMPT }, () => 2 + rng.int(vocab - 2)),
  );
  const options = { maxNewTokens: newTokens, temperature: 1, stop: [] };
  const decode = (x: ArrayLike<number>) => policy.tokenizer.decode(x);
  const rate = async (path: DecodePath) => {
    await generateBatch(tf, policy.model, prompts, options, rng, decode, path);
    started = performance.now();
    await generateBatch(tf, policy.model, prompts, options, rng, decode, path);
    return (batch * newTokens) / ((performance.now() - started) / 1000);
  };
  const defaultPath = cachedDecodePath(tf, policy.model, batch);
  const rates = {
    generateKvTokensPerSecond: await rate(defaultPath),
    defaultPath,
    generateKvTensorTokensPerSecond: defaultPath === 'tensor-cache' ? Number.NaN : await rate('tensor-cache'),
    generateFullTokensPerSecond: await rate('full'),
  };
  const parameters = policy.variables.reduce((s, v) => s + v.size, 0);
  policy.dispose();
  return {
    trainTokensPerSecond,
    ...rates,
    parameters,
  };
}

/** Tokens/s of full training steps (forward, backward, Adam) on random tokens, after four warm-up steps. */
async function trainRate(tf: Tf, policy: LlmPolicy, batch: number, steps: number, rng: Rng): Promise<number> {
  const t = policy.model.shape.context + 1;
  const data = Int32Array.from({ length: batch * t }, () => rng.int(policy.tokenizer.vocabSize));
  const adam = new Adam(tf, policy.variables);
  const trainStep = async () => {
    const { grads, value } = tf.tidy(() => {
      const tokens = tf.tensor2d(data, [batch, t], 'int32');
      const r = tf.variableGrads(
        // The SFT loss (next-token cross-entropy, no entropy term), as the reference's step.
        () => tf.neg(tf.mean(policy.tokenLogProbs(tokens, false, false).logProbs)) as TF.Scalar,
        policy.variables,
      );
      return { grads: policy.variables.map((v) => r.grads[v.name]), value: r.value };
    });
    await value.data();
    value.dispose();
    await adam.apply(grads, 3e-4);
    tf.dispose(grads);
  };
  // Warm-up: V8 compiles the kernels' hot functions again, optimised, on a background thread, and the
  // kernel helper starts; with two, the first figure of a process came out ~15% low.
  for (let i = 0; i < 4; i++) await trainStep();
  const started = performance.now();
  for (let i = 0; i < steps; i++) await trainStep();
  return (steps * batch * (t - 1)) / ((performance.now() - started) / 1000);
}

/**
 * Training tokens/s of the default shape in the two slower configurations, for the table: the host kernels
 * on one thread (no kernel helper), and the trunk as tfjs ops (what the host trunk replaces).
 */
export async function measureTrainVariants(): Promise<{
  unfused: number;
  oneThread: number;
  tensorOps: number;
}> {
  const { tf } = await startBackend('wasm');
  const measure = async (name: string, setup: (policy: LlmPolicy) => void, steps: number) => {
    const rng = new Rng(0);
    const policy = new LlmPolicy(tf, name, DEFAULT_SHAPE, rng);
    setup(policy);
    const rate = await trainRate(tf, policy, BATCH, steps, rng);
    policy.dispose();
    return rate;
  };
  enableFusedMultiplyAdd(false);
  try {
    const unfused = await measure('bench-unfused', () => {}, 8);
    enableFusedMultiplyAdd(true);
    enableKernelHelpers(false);
    const oneThread = await measure('bench-one-thread', () => {}, 8);
    const tensorOps = await measure(
      'bench-tensor-ops',
      (p) => {
        p.model.trunkKernels = 'tensor';
      },
      3,
    );
    return { unfused, oneThread, tensorOps };
  } finally {
    enableFusedMultiplyAdd(true);
    enableKernelHelpers(true);
  }
}

interface ReferenceRates {
  impl: string;
  parameters: number;
  train_tokens_per_second: number;
  generate_tokens_per_second_kv: number;
  generate_tokens_per_second_full: number;
}

async function measureReference(vocab: number): Promise<ReferenceRates | string> {
  const script = path.resolve(repoRoot, '..', 'shared', 'reference', 'transformer_tokens_torch.py');
  if (!existsSync(script)) return `reference script not found at ${script}`;
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const flags = ['--layers', '4', '--width', '128', '--heads', '4', '--context', '128'];
  try {
    const { stdout } = await run(
      python,
      [script, ...flags, '--vocab', String(vocab), '--batch', String(BATCH)],
      {
        timeout: 600_000,
      },
    );
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as ReferenceRates;
  } catch (error) {
    return `reference failed: ${(error as Error).message.split('\n')[0]}`;
  }
}

export interface HeadlineFigures {
  seed: number;
  sftOnly: number;
  final: number;
  /** The same training run measured greedily (temperature 0): SFT only and after GRPO. */
  sftOnlyGreedy: number;
  finalGreedy: number;
  noTool: number;
  seconds: number;
  noToolSeconds: number;
}

/**
 * The calculator template at full length; the same graph measured greedily (held-out evaluation draws from
 * its own stream, so the training is identical and only the measurement changes); and the same graph with
 * the tool switched off.
 */
export async function calculatorHeadline(seed: number): Promise<HeadlineFigures> {
  const graph = loadTemplate('calculator-sft-grpo');
  const sftIterations = (graph.nodes.find((n) => n.id === 'rollout')!.params as { startIteration: number })
    .startIteration;
  const once = async (g: GraphFile) => {
    const started = performance.now();
    const result = await executeRun({ graph: g, registry: createRegistry(), backend: 'wasm', seed });
    if (result.status !== 'finished')
      throw new Error(`calculator run ${result.status}: ${result.error?.message}`);
    const at = (i: number) =>
      result.metrics.find((m) => m.iteration === i)?.metrics['rollout/heldout_success'] ?? Number.NaN;
    return {
      at,
      last: result.metrics.at(-1)!.metrics['rollout/heldout_success'],
      seconds: (performance.now() - started) / 1000,
    };
  };
  const withTool = await once(graph);
  const greedyGraph = structuredClone(graph);
  const rollout = greedyGraph.nodes.find((n) => n.id === 'rollout')!;
  rollout.params = { ...rollout.params, evalTemperature: 0 };
  const greedy = await once(greedyGraph);
  const noToolGraph = structuredClone(graph);
  const env = noToolGraph.nodes.find((n) => n.id === 'calc')!;
  env.params = { ...env.params, toolEnabled: false };
  const noTool = await once(noToolGraph);
  return {
    seed,
    sftOnly: withTool.at(sftIterations),
    final: withTool.last,
    sftOnlyGreedy: greedy.at(sftIterations),
    finalGreedy: greedy.last,
    noTool: noTool.last,
    seconds: withTool.seconds,
    noToolSeconds: noTool.seconds,
  };
}

export async function benchLlm(options: LlmBenchOptions = {}): Promise<Section[]> {
  const sections: Section[] = [];
  if (!options.speedOnly) {
    const rows = [];
    for (const seed of options.seeds ?? [1, 2, 3]) {
      console.error(`bench: calculator headline, seed ${seed}...`);
      const f = await calculatorHeadline(seed);
      rows.push([
        String(seed),
        fmt(f.sftOnly * 100, 1),
        fmt(f.final * 100, 1),
        fmt((f.final - f.sftOnly) * 100, 1),
        fmt(f.sftOnlyGreedy * 100, 1),
        fmt(f.finalGreedy * 100, 1),
        fmt(f.noTool * 100, 1),
        `${fmt(f.seconds, 0)} s / ${fmt(f.noToolSeconds, 0)} s`,
      ]);
    }
    sections.push({
      title: 'Calculator agent: held-out exact answers (%) on 200 problems, SFT (30% flawed demos) then GRPO',
      header: [
        'seed',
        'SFT only',
        'SFT + GRPO',
        'GRPO gain',
        'SFT only, greedy',
        'SFT + GRPO, greedy',
        'no tool (same size)',
        'wall-clock (tool / no tool)',
      ],
      rows,
      notes: [
        'Held-out success is the policy’s pass@1 sampled at temperature 1 (as trained); the greedy columns measure the same training run at temperature 0.',
      ],
    });
  }
  console.error('bench: transformer tokens/s...');
  const ours = await measureTokenRates();
  const variants = await measureTrainVariants();
  const reference = options.skipReference ? 'skipped' : await measureReference(97);
  const ref = typeof reference === 'string' ? undefined : reference;
  const row = (name: string, a: number, b: number | undefined) => [
    name,
    fmt(a),
    b === undefined ? 'n/a' : fmt(b),
    b === undefined ? 'n/a' : `${fmt(a / b, 2)}x`,
  ];
  sections.push({
    title: `LLM agent default size (4 layers x 128, 4 heads, context 128; ${fmt(ours.parameters)} parameters): tokens/s`,
    header: ['figure', 'ours (tfjs wasm)', `reference (${ref?.impl ?? 'PyTorch'})`, 'ratio'],
    rows: [
      row(
        'training tokens/s (batch 16 x 128; host trunk, kernels on 2 threads, the default)',
        ours.trainTokensPerSecond,
        ref?.train_tokens_per_second,
      ),
      row(
        'training tokens/s, host trunk without fused multiply-adds',
        variants.unfused,
        ref?.train_tokens_per_second,
      ),
      row('training tokens/s, host trunk on 1 thread', variants.oneThread, ref?.train_tokens_per_second),
      row('training tokens/s, trunk as tfjs ops', variants.tensorOps, ref?.train_tokens_per_second),
      row(
        `generation tokens/s, KV cache (${ours.defaultPath === 'host' ? 'host SIMD decoder, the default' : 'tensor ops'})`,
        ours.generateKvTokensPerSecond,
        ref?.generate_tokens_per_second_kv,
      ),
      ...(Number.isNaN(ours.generateKvTensorTokensPerSecond)
        ? []
        : [
            row(
              'generation tokens/s, KV cache as tensor ops',
              ours.generateKvTensorTokensPerSecond,
              ref?.generate_tokens_per_second_kv,
            ),
          ]),
      row(
        'generation tokens/s, no cache',
        ours.generateFullTokensPerSecond,
        ref?.generate_tokens_per_second_full,
      ),
    ],
    notes: typeof reference === 'string' ? [`reference: ${reference}`] : [],
  });
  return sections;
}
