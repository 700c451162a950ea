/**
 * PPO for text: SFT on calculator demonstrations (30% flawed), then PPO with a value head on the agent's
 * transformer and token-level GAE. PPO raises the reward, the value loss falls, tensors stay flat; a
 * checkpoint resume reproduces the uninterrupted run (KL terms on).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { graphEdge as edge, graphNode as node, numbersOf } from '../helpers/graphs.ts';

function textPpoGraph(o: {
  sftIterations: number;
  ppoIterations: number;
  agent: Record<string, unknown>;
  rollout?: Record<string, unknown>;
  credit?: Record<string, unknown>;
  ppo?: Record<string, unknown>;
}) {
  return {
    format: 'agent-rl-studio/graph',
    version: 1,
    name: 'SFT then PPO with a value head',
    seed: 1,
    run: { iterations: o.sftIterations + o.ppoIterations, checkpointEvery: 0, backend: 'wasm' },
    nodes: [
      // Two-digit sums: short transcripts (the test affords a model that learns the format) and enough
      // problems that the held-out split is not memorised (one-digit sums leave 17 training problems).
      node('calc', 'env.calculator-tool', {
        digitsA: 2,
        digitsB: 2,
        operation: '+',
        maxTurns: 2,
        flawedFraction: 0.3,
      }),
      node('agent', 'agent.llm', { context: 64, activation: 'relu', ...o.agent }),
      node('sft', 'trainer.sft', {
        iterations: o.sftIterations,
        stepsPerIteration: 4,
        batchSize: 16,
        datasetSize: 256,
        lr: 3e-3,
      }),
      node('rollout', 'rollout.group', {
        promptsPerIteration: 8,
        groupSize: 4,
        maxNewTokens: 22,
        startIteration: o.sftIterations,
        evalEvery: 0,
        ...o.rollout,
      }),
      node('value', 'value.llm-head', {}),
      node('credit', 'credit.token-gae', { ...o.credit }),
      node('ppo', 'trainer.ppo', {
        lr: 3e-4,
        valueLr: 3e-3,
        annealLr: false,
        epochs: 2,
        minibatches: 2,
        entropyCoef: 0,
        ...o.ppo,
      }),
    ],
    edges: [
      edge('agent', 'policy', 'sft', 'policy'),
      edge('calc', 'env', 'sft', 'env'),
      edge('calc', 'env', 'rollout', 'env'),
      edge('agent', 'policy', 'rollout', 'policy'),
      edge('agent', 'policy', 'value', 'policy'),
      edge('rollout', 'trajectories', 'credit', 'trajectories'),
      edge('value', 'value', 'credit', 'value'),
      edge('agent', 'policy', 'ppo', 'policy'),
      edge('value', 'value', 'ppo', 'value'),
      edge('rollout', 'trajectories', 'ppo', 'trajectories'),
      edge('credit', 'advantages', 'ppo', 'advantages'),
    ],
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'llm-text-ppo-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('PPO for text with a value head (WebAssembly)', () => {
  it('seed 1: after SFT, PPO raises the reward, the value loss falls, tensors stay flat', async () => {
    const sft = 100;
    const ppo = 60;
    const graph = textPpoGraph({
      sftIterations: sft,
      ppoIterations: ppo,
      agent: { layers: 2, width: 48, heads: 4 },
      // 128 held-out problems: with 64, one step of the rate is 1.6 points and seed 1 moved by +0.125
      // on one float order and +0.34 on another.
      rollout: { evalEvery: sft, evalProblems: 128 },
    });
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
    const tensors: number[] = [];
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = await executeRun({
      graph,
      registry: createRegistry(),
      onEvent: (e) => {
        if (e.type === 'metrics') tensors.push(tf.memory().numTensors);
      },
    });
    const used = process.cpuUsage(cpu);
    expect(result.status).toBe('finished');
    const m = result.metrics.map((r) => r.metrics);
    const rl = m.slice(sft);
    const reward = rl.map((x) => x['rollout/reward_mean']);
    const valueLoss = rl.map((x) => x['ppo/value_loss']);
    // Ten iterations (320 episodes) a side: five left the comparison within noise of the threshold.
    const early = mean(reward.slice(0, 10));
    const late = mean(reward.slice(-10));
    const heldoutSft = m[sft]['rollout/heldout_success'];
    const heldoutPpo = m[sft + ppo - 1]['rollout/heldout_success'];
    console.log(
      `text PPO seed 1: reward ${early.toFixed(3)} -> ${late.toFixed(3)} (first/last 10 iterations), ` +
        `value loss ${mean(valueLoss.slice(0, 5)).toFixed(4)} -> ${mean(valueLoss.slice(-5)).toFixed(4)}, ` +
        `held-out ${heldoutSft} -> ${heldoutPpo}, ` +
        `${((performance.now() - started) / 1000).toFixed(0)} s wall, ` +
        `${((used.user + used.system) / 1e6).toFixed(0)} s CPU`,
    );
    for (const x of rl) {
      for (const name of ['ppo/policy_loss', 'ppo/entropy', 'ppo/approx_kl', 'ppo/clip_fraction']) {
        expect(Number.isFinite(x[name]), name).toBe(true);
      }
      expect(x['ppo/agent_tokens']).toBeGreaterThan(0);
      expect(x['rollout/response_length']).toBeGreaterThan(0);
    }
    // Measured (seed 1, host trunk with fused multiply-adds, the current numerics): reward 0.531 -> 0.750,
    // held-out (128 problems) 0.531 -> 0.750 (float64 layer norms and dot-product attention scores before:
    // 0.519 -> 0.784, 0.539 -> 0.719); multiplies and adds apart: 0.544 -> 0.781, 0.500 -> 0.797. Seeds 2 and 3
    // (not asserted; 64 held-out problems): reward 0.403 -> 0.634 and 0.491 -> 0.731, held-out 0.422 ->
    // 0.719 and 0.469 -> 0.750 (apart: 0.347 -> 0.631 and 0.537 -> 0.731, 0.313 -> 0.688, 0.438 -> 0.766).
    expect(late).toBeGreaterThanOrEqual(early + 0.15);
    expect(heldoutPpo).toBeGreaterThanOrEqual(heldoutSft + 0.15);
    expect(mean(valueLoss.slice(-5))).toBeLessThan(0.75 * mean(valueLoss.slice(0, 5)));
    // The same tensor count after every PPO iteration: nothing leaks from scoring, GAE or the update.
    expect(new Set(tensors.slice(sft)).size).toBe(1);
  }, 400_000);

  it('a checkpoint resume reproduces the uninterrupted run (KL penalty and KL loss on)', async () => {
    const graph = textPpoGraph({
      sftIterations: 2,
      ppoIterations: 3,
      agent: { layers: 1, width: 32, heads: 2 },
      rollout: { promptsPerIteration: 2 },
      credit: { klCoef: 0.05 },
      ppo: { klCoef: 0.04 },
    });
    graph.run.checkpointEvery = 3;
    const full = await executeRun({ graph, registry: createRegistry() });
    expect(full.status).toBe('finished');
    const last = full.metrics[4].metrics;
    expect(Number.isFinite(last['ppo/kl'])).toBe(true);
    expect(Number.isFinite(last['credit/kl_penalty'])).toBe(true);
    const dir = path.join(scratch, 'part');
    const first = await executeRun({ graph, registry: createRegistry(), iterations: 3, runDir: dir });
    expect(first.status).toBe('finished');
    const resumed = await executeRun({ graph, registry: createRegistry(), resumeFrom: dir, iterations: 5 });
    expect(resumed.status).toBe('finished');
    expect(numbersOf(resumed.metrics)).toEqual(numbersOf(full.metrics).slice(3));
  }, 120_000);
});
