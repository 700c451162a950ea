/**
 * The SFT -> GRPO pipeline as one graph, small: it compiles, switches phase, publishes the metrics and
 * credit-coloured transcripts, frees its tensors every iteration, and a checkpoint resume reproduces the
 * uninterrupted run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import type { TrajectorySample } from '../../src-main/engine/events.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { graphEdge as edge, graphNode as node, numbersOf } from '../helpers/graphs.ts';

function calculatorGraph(o: {
  sftIterations: number;
  grpoIterations: number;
  credit?: string;
  env?: string;
  agent?: Record<string, unknown>;
  rollout?: Record<string, unknown>;
}) {
  return {
    format: 'agent-rl-studio/graph',
    version: 1,
    name: 'SFT then GRPO',
    seed: 1,
    run: { iterations: o.sftIterations + o.grpoIterations, checkpointEvery: 0, backend: 'wasm' },
    nodes: [
      node('calc', o.env ?? 'env.calculator-tool', {}),
      node('agent', 'agent.llm', {
        layers: 1,
        width: 32,
        heads: 2,
        context: 80,
        activation: 'relu',
        ...o.agent,
      }),
      node('sft', 'trainer.sft', {
        iterations: o.sftIterations,
        stepsPerIteration: 1,
        batchSize: 8,
        datasetSize: 64,
      }),
      node('rollout', 'rollout.group', {
        promptsPerIteration: 2,
        groupSize: 4,
        maxNewTokens: 20,
        startIteration: o.sftIterations,
        evalEvery: 0,
        ...o.rollout,
      }),
      node('credit', o.credit ?? 'credit.grpo', {}),
      node('grpo', 'trainer.grpo', { lr: 1e-3, beta: 0.04, minibatches: 2, epochs: 2 }),
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

const scratch = mkdtempSync(path.join(os.tmpdir(), 'llm-pipeline-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('SFT -> GRPO in one graph (small model, WebAssembly)', () => {
  it('runs both phases, publishes metrics and text samples with per-token credit, tensors flat', async () => {
    const graph = calculatorGraph({ sftIterations: 2, grpoIterations: 4, credit: 'credit.turn-level' });
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
    const tensors: number[] = [];
    const samples: TrajectorySample[] = [];
    const result = await executeRun({
      graph,
      registry: createRegistry(),
      onEvent: (e) => {
        if (e.type === 'metrics') tensors.push(tf.memory().numTensors);
        if (e.type === 'samples') samples.push(...e.samples);
      },
    });
    expect(result.status).toBe('finished');
    const m = result.metrics.map((r) => r.metrics);
    expect(m[0]['sft/active']).toBe(1);
    expect(m[0]['sft/sft_loss']).toBeGreaterThan(0);
    expect(m[2]['sft/active']).toBe(0);
    expect(m[1]['grpo/kl']).toBeUndefined();
    for (const k of [2, 3, 4, 5]) {
      for (const name of [
        'grpo/kl',
        'grpo/entropy',
        'grpo/clip_fraction',
        'rollout/reward_mean',
        'rollout/format_error_rate',
      ]) {
        expect(Number.isFinite(m[k][name]), `${name} at ${k}`).toBe(true);
      }
      expect(m[k]['rollout/response_length']).toBeGreaterThan(0);
    }
    // Tensors: the same count after every GRPO iteration (nothing leaks from generation or training).
    expect(new Set(tensors.slice(2)).size).toBe(1);
    const text = samples.filter((s) => s.kind === 'text');
    expect(text.length).toBeGreaterThan(0);
    const agentTurn = text[0].kind === 'text' ? text[0].turns.find((t) => t.role === 'agent') : undefined;
    expect(agentTurn?.tokens?.length).toBe(agentTurn?.credit?.length);
    expect(agentTurn?.tokens?.join('')).toBe(agentTurn?.text);
  }, 120_000);

  it('a checkpoint resume reproduces the uninterrupted run', async () => {
    const graph = calculatorGraph({ sftIterations: 1, grpoIterations: 3, credit: 'credit.rloo' });
    graph.run.checkpointEvery = 2;
    const full = await executeRun({ graph, registry: createRegistry() });
    const dir = path.join(scratch, 'part');
    const first = await executeRun({ graph, registry: createRegistry(), iterations: 2, runDir: dir });
    expect(first.status).toBe('finished');
    const resumed = await executeRun({ graph, registry: createRegistry(), resumeFrom: dir, iterations: 4 });
    expect(resumed.status).toBe('finished');
    expect(numbersOf(resumed.metrics)).toEqual(numbersOf(full.metrics).slice(2));
  }, 120_000);
});
