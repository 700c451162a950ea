/**
 * The Countdown template as CI runs it: from random weights, the template's whole SFT phase (100
 * iterations x 8 steps of 16 demonstrations), then all 100 GRPO iterations with MT-GRPO turn-level
 * advantages, held-out success (pass@1 at temperature 1) on 200 test problems measured before the first
 * RL update (iteration 100, the SFT-only model) and at the end.
 *
 * Measured on WebAssembly with the host trunk, seed 1 (this exact budget, the current numerics): SFT only
 * 0.145, end 0.255 (68 s in `npm test` on the 2-core machine); with earlier numerics it was still at 0.14
 * after only 40 GRPO iterations, so CI runs the whole GRPO phase. Seeds 2-3 and the comparison with trajectory-level and outcome-only credit.grpo are
 * in the template card (`npm run bench` runs the template at full length).
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const SFT_ITERATIONS = 100;
const GRPO_ITERATIONS = 100;

function ciGraph() {
  const graph = loadTemplate('countdown-turn-level');
  graph.run = { ...graph.run, iterations: SFT_ITERATIONS + GRPO_ITERATIONS, checkpointEvery: 0 };
  const node = (id: string) => graph.nodes.find((n) => n.id === id)!;
  expect(node('sft').params?.iterations).toBe(SFT_ITERATIONS);
  expect(node('rollout').params?.startIteration).toBe(SFT_ITERATIONS);
  expect(node('credit').type).toBe('credit.turn-level');
  // Held-out figures at the hand-over (SFT only) and at the end; the template also measures at 50.
  node('rollout').params = { ...node('rollout').params, evalEvery: SFT_ITERATIONS };
  return graph;
}

describe('Countdown template: SFT, then GRPO with turn-level credit (WebAssembly)', () => {
  it('seed 1: GRPO lifts held-out success above the SFT-only checkpoint of the same run', async () => {
    const graph = ciGraph();
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
    const started = performance.now();
    const result = await executeRun({ graph, registry: createRegistry(), backend: 'wasm', seed: 1 });
    const seconds = (performance.now() - started) / 1000;
    expect(result.status).toBe('finished');
    const at = (i: number) => result.metrics.find((m) => m.iteration === i)?.metrics ?? {};
    const sftOnly = at(SFT_ITERATIONS)['rollout/heldout_success'];
    const final = result.metrics.at(-1)!.metrics['rollout/heldout_success'];
    console.log(`countdown seed 1: SFT only ${sftOnly}, SFT + GRPO ${final}, ${seconds.toFixed(0)} s`);
    // Measured: 0.145 -> 0.255 (the card's seeds 1-8 end between 1.5% and 28.5%; seed 1 at 25.5%).
    // SFT alone already solves some held-out problems (the model reads the numbers and the target)...
    expect(sftOnly).toBeGreaterThanOrEqual(0.05);
    // ...and GRPO with turn-level credit improves on that checkpoint within the same run, to the card's check.
    expect(final).toBeGreaterThanOrEqual(0.15);
    expect(final - sftOnly).toBeGreaterThanOrEqual(0.05);
    // The turn-level advantages really differ from the outcome advantage on some turns.
    const spreads = result.metrics
      .filter((m) => m.iteration >= SFT_ITERATIONS)
      .map((m) => m.metrics['credit/turn_advantage_spread']);
    expect(Math.max(...spreads)).toBeGreaterThan(0.1);
  }, 1_200_000);
});
