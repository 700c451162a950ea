import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { graphEdge as edge, graphNode as node } from '../helpers/graphs.ts';

/** Ambiguous bandit + MLP actor/critic + Monte-Carlo credit (value baseline) + PPO. */
const graph = {
  format: 'agent-rl-studio/graph',
  version: 1,
  name: 'PPO + Monte-Carlo on the ambiguous bandit',
  seed: 1,
  run: { iterations: 60, checkpointEvery: 0, backend: 'wasm' },
  nodes: [
    node('env', 'env.ambiguous-bandit', { numEnvs: 8 }, 0),
    node('policy', 'agent.mlp-policy', { hidden: [16], activation: 'tanh' }, 300),
    node('value', 'value.mlp', { hidden: [16] }, 300),
    node('rollout', 'rollout.vector', { stepsPerEnv: 16, window: 128 }, 600),
    node('mc', 'credit.monte-carlo', { gamma: 1, baseline: 'value' }, 900),
    node('ppo', 'trainer.ppo', { lr: 0.01, epochs: 4, minibatches: 2, entropyCoef: 0 }, 1200),
  ],
  edges: [
    edge('env', 'env', 'policy', 'env'),
    edge('env', 'env', 'value', 'env'),
    edge('env', 'env', 'rollout', 'env'),
    edge('policy', 'policy', 'rollout', 'policy'),
    edge('value', 'value', 'rollout', 'value'),
    edge('rollout', 'trajectories', 'mc', 'trajectories'),
    edge('rollout', 'trajectories', 'ppo', 'trajectories'),
    edge('mc', 'advantages', 'ppo', 'advantages'),
    edge('policy', 'policy', 'ppo', 'policy'),
    edge('value', 'value', 'ppo', 'value'),
  ],
};

describe('HCA environments train end to end (WebAssembly backend)', () => {
  // Arm 0 pays 0.9 * 2 + 0.1 * 1 = 1.9 in expectation, arm 1 pays 1.1, a uniform policy 1.5. The
  // environment reports the share of pulls of arm 0 (rollout/optimal_action_rate, over each iteration's
  // 128 one-step episodes); a uniform policy gives 0.5. The last 10 iterations average 1280 pulls.
  // Threshold: rate > 0.85.
  it.each([1, 2, 3])(
    'seed %i: PPO with Monte-Carlo credit learns the better arm of the ambiguous bandit',
    async (seed) => {
      const compiled = compileGraph(graph, createRegistry());
      expect(compiled.diagnostics).toEqual([]);
      const returns: number[] = [];
      const rates: number[] = [];
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        backend: 'wasm',
        seed,
        onEvent: (event) => {
          if (event.type !== 'metrics') return;
          returns.push(event.record.metrics['rollout/episode_return_mean']);
          rates.push(event.record.metrics['rollout/optimal_action_rate']);
        },
      });
      expect(result.error).toBeUndefined();
      expect(result.backend).toBe('wasm');
      expect(returns).toHaveLength(60);
      const last = returns.slice(-10).reduce((a, b) => a + b, 0) / 10;
      // The environment counts the pulls of arm 0 itself (rollout/optimal_action_rate, per iteration).
      const optimalRate = rates.slice(-10).reduce((a, b) => a + b, 0) / 10;
      expect(rates.every((r) => r >= 0 && r <= 1)).toBe(true);
      console.log(
        `seed ${seed}: first-iteration return ${returns[0].toFixed(2)}, last-10 return ${last.toFixed(3)}, optimal-action rate ${optimalRate.toFixed(3)}`,
      );
      expect(optimalRate).toBeGreaterThan(0.85);
    },
    60_000,
  );
});
