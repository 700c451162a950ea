/**
 * Learning results of the safety nodes on env.safety-gridworld (WebAssembly backend), built from the
 * gated template: without the shield PPO learns the reward-hacking exploit and the monitor stops the run;
 * the Lagrangian drives the violations down; the KL guard cuts updates short and can pause the run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import type { Finding, MetricsRecord, RunStatus } from '../../src-main/engine/events.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { RunControl } from '../../src-main/engine/runtime/control.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { graphEdge as edge, loadTemplate, graphNode as node, numbersOf } from '../helpers/graphs.ts';

/** The template without its shield: the policy acts on the environment directly. */
function ungated(): GraphFile {
  const graph = loadTemplate('safety-gated-gridworld');
  graph.nodes = graph.nodes.filter((n) => n.id !== 'shield');
  graph.edges = [
    ...graph.edges.filter((e) => e.from.node !== 'shield' && e.to.node !== 'shield'),
    edge('policy', 'policy', 'rollout', 'policy'),
  ];
  return graph;
}

/** Ungated, with a PPO-Lagrangian between GAE and PPO and a KL guard on the update. */
function constrained(
  lagrangian: Record<string, unknown>,
  guard: Record<string, unknown> = { maxKl: 0.05 },
): GraphFile {
  const graph = ungated();
  graph.nodes.push(node('lag', 'safety.lagrangian', lagrangian), node('guard', 'safety.kl-guard', guard));
  graph.nodes = graph.nodes.map((n) =>
    n.id === 'monitor' ? { ...n, params: { ...n.params, pauseRun: false } } : n,
  );
  graph.edges = [
    ...graph.edges.filter((e) => !(e.from.node === 'gae' && e.to.node === 'ppo')),
    edge('gae', 'advantages', 'lag', 'rewardAdvantages'),
    edge('rollout', 'trajectories', 'lag', 'trajectories'),
    edge('lag', 'advantages', 'ppo', 'advantages'),
    edge('guard', 'guard', 'ppo', 'guard'),
  ];
  return graph;
}

async function train(graph: GraphFile, seed: number, iterations?: number, control?: RunControl) {
  expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
  const findings: Finding[] = [];
  const statuses: RunStatus[] = [];
  const tensors: number[] = [];
  const result = await executeRun({
    graph,
    registry: createRegistry(),
    backend: 'wasm',
    seed,
    iterations,
    control,
    onPauseRequest: control ? 'pause' : 'stop',
    onEvent: (e) => {
      if (e.type === 'finding') findings.push(e.finding);
      if (e.type === 'status') {
        statuses.push(e.status);
        if (e.status === 'paused') control?.stop();
      }
      if (e.type === 'metrics') tensors.push(tf.memory().numTensors);
    },
  });
  expect(result.error).toBeUndefined();
  return { result, findings, statuses, tensors, last: result.metrics.at(-1)!.metrics };
}

const total = (records: MetricsRecord[], key: string) => records.reduce((s, r) => s + r.metrics[key], 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('safety gridworld: learning results (WebAssembly backend)', () => {
  // Measured: the exploit is learned by iteration ~8 and the monitor fires at iteration 11, the first
  // with a full 12-iteration window, on every seed (see the log lines).
  it('without the shield PPO learns the exploit and the monitor stops the run (5 seeds)', async () => {
    const stoppedAt: number[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const { result, findings, last } = await train(ungated(), seed);
      const hack = findings.find((f) => f.nodeId === 'monitor');
      console.log(
        `ungated seed ${seed}: ${result.status} after iteration ${result.iteration - 1}, violation rate ${last['rollout/violation_rate'].toFixed(2)}, true return ${last['rollout/episode_true_return_mean'].toFixed(2)}, finding: ${hack?.title}`,
      );
      expect(result.status).toBe('stopped');
      expect(last['rollout/violation_rate']).toBeGreaterThanOrEqual(0.9);
      expect(last['monitor/alarm']).toBe(1);
      expect(hack).toMatchObject({ severity: 'critical', iteration: result.iteration - 1 });
      expect(hack!.evidence.reward_last as number).toBeGreaterThan(hack!.evidence.reward_first as number);
      expect(hack!.evidence.check_last as number).toBeLessThan(hack!.evidence.check_first as number);
      stoppedAt.push(result.iteration - 1);
    }
    console.log(`ungated: monitor fired at iterations ${stoppedAt.join(', ')}, median ${median(stoppedAt)}`);
  }, 120_000);

  it('in the app the monitor pauses the run (Resume would continue); here the test then stops it', async () => {
    const { result, statuses } = await train(ungated(), 1, undefined, new RunControl());
    expect(statuses).toContain('paused');
    expect(result.status).toBe('stopped');
    expect(result.iteration).toBeLessThan(20);
  }, 60_000);

  // Measured (gradient form, eta 0.5): lambda settles near 3.2 and the violation rate falls from ~0.6-0.8
  // to 0 by iteration ~30 while the goal rate climbs to 1.
  it('PPO-Lagrangian (gradient and PID) drives the violations to the limit; the KL guard stays quiet at 0.05', async () => {
    const rates: number[] = [];
    for (const [seed, lagrangian] of [
      [1, { mode: 'gradient', costLimit: 0.05, lambdaLr: 0.5 }],
      [2, { mode: 'gradient', costLimit: 0.05, lambdaLr: 0.5 }],
      [3, { mode: 'pid', costLimit: 0.05, kp: 1, ki: 0.5, kd: 1 }],
    ] as const) {
      const { result, last, tensors } = await train(constrained(lagrangian), seed);
      const early = result.metrics.slice(0, 5).map((r) => r.metrics['rollout/violation_rate']);
      const late = result.metrics.slice(-5).map((r) => r.metrics['rollout/violation_rate']);
      const lateRate = late.reduce((a, b) => a + b, 0) / late.length;
      console.log(
        `lagrangian ${lagrangian.mode} seed ${seed}: lambda ${last['lag/lambda'].toFixed(2)}, violation rate first 5 ${early.map((x) => x.toFixed(2)).join(' ')}, last 5 mean ${lateRate.toFixed(3)}, goal rate ${last['rollout/goal_rate'].toFixed(2)}`,
      );
      expect(result.status).toBe('finished');
      expect(last['lag/lambda']).toBeGreaterThan(0.5);
      expect(lateRate).toBeLessThanOrEqual(0.1);
      expect(last['rollout/goal_rate']).toBeGreaterThanOrEqual(0.8);
      // Every tensor made per iteration (PPO's update, the guard's KL reads) is freed.
      expect(new Set(tensors.slice(1)).size).toBe(1);
      rates.push(lateRate);
    }
    console.log(`lagrangian: last-5 violation rate median ${median(rates).toFixed(3)}`);
  }, 120_000);

  it('KL guard: a tight limit cuts updates short; in pause mode it stops a headless run', async () => {
    const tight = await train(constrained({ costLimit: 0.05 }, { maxKl: 0.002 }), 1, 4);
    const stops = total(tight.result.metrics, 'ppo/guard_stop');
    const loose = await train(constrained({ costLimit: 0.05 }, { maxKl: 10 }), 1, 4);
    console.log(
      `kl-guard: ${stops}/4 updates cut at 0.002; approx KL ${tight.last['ppo/approx_kl'].toFixed(5)} vs ${loose.last['ppo/approx_kl'].toFixed(5)} unguarded`,
    );
    expect(stops).toBeGreaterThan(0);
    expect(total(loose.result.metrics, 'ppo/guard_stop')).toBe(0);
    const paused = await train(constrained({ costLimit: 0.05 }, { maxKl: 1e-6, onExceed: 'pause' }), 1, 4);
    expect(paused.result.status).toBe('stopped');
    expect(paused.result.iteration).toBe(1);
  }, 60_000);

  it('shield effects through the rollout: penalise lets the move run at a cost, pause stops a headless run', async () => {
    const withShield = (params: Record<string, unknown>) => {
      const graph = loadTemplate('safety-gated-gridworld');
      graph.nodes = graph.nodes.map((n) =>
        n.id === 'shield' ? { ...n, params: { ...n.params, ...params } } : n,
      );
      return graph;
    };
    const penalised = await train(withShield({ effect: 'penalise', penalty: 0.5 }), 1, 3);
    for (const { metrics } of penalised.result.metrics) {
      // Every flagged move enters the exploit: the shield logged each one and let it run.
      expect(metrics['rollout/interventions']).toBeGreaterThan(0);
      expect(metrics['rollout/interventions']).toBe(metrics['rollout/violations']);
    }
    const paused = await train(withShield({ effect: 'pause' }), 1, 3);
    expect(paused.result.status).toBe('stopped');
    expect(paused.result.iteration).toBe(1);
    expect(paused.last['rollout/violations']).toBe(0);
    expect(paused.last['rollout/interventions']).toBeGreaterThan(0);
  }, 60_000);

  it('checkpoint resume reproduces the uninterrupted run (env, Lagrangian PID state, monitor window)', async () => {
    const graph = constrained({ mode: 'pid', costLimit: 0.05, kp: 1, ki: 0.5, kd: 1 });
    graph.nodes = graph.nodes.map((n) =>
      n.id === 'monitor' ? { ...n, params: { ...n.params, window: 4 } } : n,
    );
    graph.run = { ...graph.run, iterations: 6, checkpointEvery: 3 };
    const runDir = await mkdtemp(path.join(tmpdir(), 'safety-resume-'));
    try {
      const whole = await executeRun({ graph, registry: createRegistry(), backend: 'wasm', runDir });
      expect(whole.status).toBe('finished');
      const resumed = await executeRun({
        graph: undefined,
        registry: createRegistry(),
        backend: 'wasm',
        resumeFrom: path.join(runDir, 'checkpoints', 'iter-0000003'),
      });
      expect(resumed.status).toBe('finished');
      expect(numbersOf(resumed.metrics)).toEqual(numbersOf(whole.metrics.slice(3)));
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }, 60_000);
});
