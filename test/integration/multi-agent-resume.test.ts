/**
 * Multi-agent runs are deterministic and resumable: a run resumed from a checkpoint gives exactly the
 * numbers of the uninterrupted run (env state, per-agent policies, the COMA critic and its optimiser,
 * the centralised critic), and tensors stay flat across iterations.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, numbersOf } from '../helpers/graphs.ts';
import { matrixGameGraph } from '../helpers/multi-agent-graphs.ts';

async function resumeMatches(graph: GraphFile): Promise<void> {
  const runDir = await mkdtemp(path.join(tmpdir(), 'multi-agent-resume-'));
  try {
    const whole = await executeRun({ graph, registry: createRegistry(), backend: 'wasm', runDir });
    expect(whole.status).toBe('finished');
    const resumed = await executeRun({
      graph: undefined,
      registry: createRegistry(),
      backend: 'wasm',
      resumeFrom: path.join(runDir, 'checkpoints', 'iter-0000002'),
    });
    expect(resumed.status).toBe('finished');
    expect(numbersOf(resumed.metrics)).toEqual(numbersOf(whole.metrics.slice(2)));
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
}

describe('multi-agent checkpoints and memory (WebAssembly backend)', () => {
  it('COMA with per-agent policies on the climbing game resumes to the same numbers', async () => {
    const graph = matrixGameGraph('coma', { iterations: 4 });
    graph.run.checkpointEvery = 2;
    await resumeMatches(graph);
  }, 60_000);

  it('the MAPPO template (cooperative meet, centralised critic) resumes to the same numbers', async () => {
    const graph = loadTemplate('mappo-cooperative-meet');
    graph.run = { ...graph.run, iterations: 4, checkpointEvery: 2 };
    graph.nodes = graph.nodes.map((n) =>
      n.id === 'rollout' ? { ...n, params: { ...n.params, stepsPerEnv: 8 } } : n,
    );
    await resumeMatches(graph);
  }, 60_000);

  it('keeps tf.memory().numTensors flat across iterations of COMA + per-agent PPO', async () => {
    const counts: number[] = [];
    const graph = matrixGameGraph('coma', { iterations: 8 });
    const result = await executeRun({
      graph,
      registry: createRegistry(),
      backend: 'wasm',
      onEvent: (e) => {
        if (e.type === 'metrics') counts.push(tf.memory().numTensors);
      },
    });
    expect(result.status).toBe('finished');
    expect(counts).toHaveLength(8);
    expect(new Set(counts.slice(1)).size).toBe(1);
    // The critic learns the joint payoffs: its TD error falls well below the payoffs' spread (~15^2).
    const loss = result.metrics.map((m) => m.metrics['coma/critic_loss']);
    expect(loss.at(-1)).toBeLessThan(loss[0] / 2);
  }, 60_000);
});
