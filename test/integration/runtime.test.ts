import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { DiscretePolicy, VectorTrajectories } from '../../nodes/contracts.ts';
import { createRegistry } from '../../nodes/index.ts';
import type { MetricsRecord, RunEvent } from '../../src-main/engine/events.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { defineNode } from '../../src-main/engine/node-api.ts';
import { readCheckpoint } from '../../src-main/engine/runtime/checkpoint.ts';
import { RunControl } from '../../src-main/engine/runtime/control.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { WorkerRun } from '../../src-main/engine/runtime/worker-run.ts';
import { loadTemplate, numbersOf, repoRoot } from '../helpers/graphs.ts';

const run = promisify(execFile);
const ITERATIONS = 8;

function smallGraph(iterations = ITERATIONS, checkpointEvery = 2): GraphFile {
  const graph = loadTemplate('cartpole-ppo');
  return { ...graph, run: { ...graph.run, iterations, checkpointEvery, backend: 'wasm' } };
}

async function uninterrupted(iterations = ITERATIONS): Promise<MetricsRecord[]> {
  const result = await executeRun({ graph: smallGraph(iterations), registry: createRegistry() });
  expect(result.status).toBe('finished');
  return result.metrics;
}

function waitFor(runner: WorkerRun, predicate: (e: RunEvent) => boolean): Promise<RunEvent> {
  return new Promise((resolve) => {
    const off = runner.on((e) => {
      if (predicate(e)) {
        off();
        resolve(e);
      }
    });
  });
}

const metricsOf = (events: RunEvent[]) => events.flatMap((e) => (e.type === 'metrics' ? [e.record] : []));

describe('runtime', () => {
  it('gives bit-identical metrics for the same seed and backend', async () => {
    const a = await uninterrupted(4);
    const b = await uninterrupted(4);
    expect(numbersOf(b)).toEqual(numbersOf(a));
  }, 120_000);

  it('pauses within 250 ms in the worker, and resume continues exactly the same run', async () => {
    const reference = await uninterrupted();
    const runner = new WorkerRun({ graph: smallGraph() });
    await waitFor(runner, (e) => e.type === 'metrics' && e.record.iteration === 1);
    const asked = performance.now();
    runner.pause();
    await waitFor(runner, (e) => e.type === 'status' && e.status === 'paused');
    const latency = performance.now() - asked;
    expect(latency).toBeLessThan(250);
    const countWhilePaused = metricsOf(runner.history).length;
    await new Promise((r) => setTimeout(r, 300));
    expect(metricsOf(runner.history).length).toBe(countWhilePaused);
    runner.resume();
    const summary = await runner.done;
    expect(summary.status).toBe('finished');
    expect(numbersOf(metricsOf(runner.history))).toEqual(numbersOf(reference));
  }, 120_000);

  it('Step runs exactly one more iteration while paused', async () => {
    const runner = new WorkerRun({ graph: smallGraph() });
    await waitFor(runner, (e) => e.type === 'metrics' && e.record.iteration === 0);
    runner.pause();
    await waitFor(runner, (e) => e.type === 'status' && e.status === 'paused');
    const before = metricsOf(runner.history).length;
    runner.step();
    await waitFor(runner, (e) => e.type === 'metrics');
    await waitFor(runner, (e) => e.type === 'status' && e.status === 'paused');
    await new Promise((r) => setTimeout(r, 200));
    expect(metricsOf(runner.history).length).toBe(before + 1);
    runner.stop();
    expect((await runner.done).status).toBe('stopped');
  }, 120_000);

  it('stop writes a checkpoint, and a new process resumes it to exactly the uninterrupted metrics', async () => {
    const reference = await uninterrupted();
    const runDir = await mkdtemp(path.join(tmpdir(), 'studio-resume-'));
    const runner = new WorkerRun({ graph: smallGraph(), runDir });
    await waitFor(runner, (e) => e.type === 'metrics' && e.record.iteration === 2);
    runner.stop();
    const summary = await runner.done;
    expect(summary.status).toBe('stopped');
    const saved = await readCheckpoint(runDir);
    expect(saved.iteration).toBeGreaterThanOrEqual(3);
    expect(saved.iteration).toBeLessThan(ITERATIONS);
    expect(saved.backend).toBe('wasm');

    const cli = path.join(repoRoot, 'bin', 'agent-rl-studio.js');
    await run(process.execPath, [cli, 'train', '--resume', runDir, '--quiet'], { cwd: repoRoot });
    const lines = (await readFile(path.join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    const resumed = lines.map((l) => JSON.parse(l) as MetricsRecord);
    expect(numbersOf(resumed)).toEqual(numbersOf(reference));
  }, 180_000);

  it('keeps tf.memory().numTensors flat from iteration 2 on over 30 iterations', async () => {
    const counts: number[] = [];
    const graph = smallGraph(30, 0);
    graph.nodes = graph.nodes.map((n) =>
      n.id === 'rollout' ? { ...n, params: { ...n.params, stepsPerEnv: 16 } } : n,
    );
    const result = await executeRun({
      graph,
      registry: createRegistry(),
      onEvent: (e) => {
        if (e.type === 'metrics') counts.push(tf.memory().numTensors);
      },
    });
    expect(result.status).toBe('finished');
    expect(counts.length).toBe(30);
    expect(new Set(counts.slice(1)).size).toBe(1);
  }, 120_000);

  it('a NaN in a parameter pauses the run with an error naming the node', async () => {
    let policy: DiscretePolicy | undefined;
    const tap = defineNode({
      type: 'test.tap',
      family: 'rollout',
      title: 'Tap',
      summary: 'Passes trajectories through and hands the policy to the test.',
      doc: 'test only',
      version: 1,
      inputs: [
        { name: 'policy', type: 'Policy' },
        { name: 'trajectories', type: 'Trajectories' },
      ],
      outputs: [{ name: 'trajectories', type: 'Trajectories', provides: { observation: 'vector' } }],
      params: z.object({}),
      create(_params, ctx) {
        policy = ctx.inputs.policy as DiscretePolicy;
        return {
          step: async (streams) => ({
            outputs: { trajectories: streams.trajectories as VectorTrajectories },
          }),
        };
      },
    });
    const graph = smallGraph(6, 0);
    graph.nodes.push({ id: 'tap', type: 'test.tap', typeVersion: 1, params: {}, position: { x: 0, y: 0 } });
    graph.edges = graph.edges.map((e) =>
      e.from.node === 'rollout' && e.to.node === 'gae'
        ? { ...e, to: { node: 'tap', port: 'trajectories' } }
        : e,
    );
    graph.edges.push(
      { from: { node: 'policy', port: 'policy' }, to: { node: 'tap', port: 'policy' } },
      { from: { node: 'tap', port: 'trajectories' }, to: { node: 'gae', port: 'trajectories' } },
    );
    const events: RunEvent[] = [];
    const control = new RunControl();
    const result = await executeRun({
      graph,
      registry: createRegistry([tap]),
      control,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'metrics' && e.record.iteration === 1) {
          const w = policy!.variables[0];
          const poisoned = tf.tidy(() => w.add(tf.scalar(Number.NaN)));
          w.assign(poisoned);
          poisoned.dispose();
        }
        // Once paused on the NaN, stop: the run keeps the last good state.
        if (e.type === 'status' && e.status === 'paused') setTimeout(() => control.stop(), 10);
      },
    });
    const error = events.find((e) => e.type === 'error');
    expect(error).toMatchObject({ type: 'error', nodeId: 'policy', field: 'weights' });
    expect(events.some((e) => e.type === 'status' && e.status === 'paused')).toBe(true);
    expect(result.status).toBe('stopped');
    expect(result.iteration).toBe(2);
  }, 120_000);
});
