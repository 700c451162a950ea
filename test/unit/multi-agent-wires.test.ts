/** Multi-agent wires: the compiler (and the canvas, through the same check) refuse single-agent parts. */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { wireMismatch } from '../../src-main/engine/ports.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';
import { matrixGameGraph } from '../helpers/multi-agent-graphs.ts';

const registry = createRegistry();
const port = (type: string, name: string, direction: 'inputs' | 'outputs') => {
  const spec = registry.get(type)?.[direction].find((p) => p.name === name);
  if (!spec) throw new Error(`${type} has no ${name}`);
  return spec;
};

describe('multi-agent wire checks', () => {
  it('a single-agent env does not fit a multi-agent rollout, critic or COMA, with the reason', () => {
    const cartpole = port('env.cartpole', 'env', 'outputs');
    for (const [type, input] of [
      ['rollout.multi-agent', 'env'],
      ['value.centralised', 'env'],
      ['credit.counterfactual', 'env'],
    ] as const) {
      expect(wireMismatch(cartpole, port(type, input, 'inputs'))).toMatch(
        /^Env with agents 'unspecified' does not fit; this input needs agents 'multi' \(a multi-agent node needs an environment with several agents/,
      );
    }
    const singleBatch = port('rollout.vector', 'trajectories', 'outputs');
    expect(wireMismatch(singleBatch, port('credit.counterfactual', 'trajectories', 'inputs'))).toMatch(
      /Trajectories with agents 'unspecified' does not fit/,
    );
  });

  it('multi-agent envs feed per-agent policies and critics, and multi-agent batches feed GAE and PPO', () => {
    for (const env of ['env.cooperative-meet', 'env.matrix-game']) {
      const out = port(env, 'env', 'outputs');
      expect(wireMismatch(out, port('rollout.multi-agent', 'env', 'inputs'))).toBeNull();
      expect(wireMismatch(out, port('agent.mlp-policy', 'env', 'inputs'))).toBeNull();
      expect(wireMismatch(out, port('value.mlp', 'env', 'inputs'))).toBeNull();
    }
    const batch = port('rollout.multi-agent', 'trajectories', 'outputs');
    expect(wireMismatch(batch, port('credit.gae', 'trajectories', 'inputs'))).toBeNull();
    expect(wireMismatch(batch, port('trainer.ppo', 'trajectories', 'inputs'))).toBeNull();
  });

  it('the compiler puts the refusal on the env port of the multi-agent rollout', () => {
    const graph = loadTemplate('mappo-cooperative-meet');
    graph.nodes = graph.nodes.map((n) =>
      n.id === 'env' ? { ...n, type: 'env.cartpole', params: { numEnvs: 4 } } : n,
    );
    const { diagnostics } = compileGraph(graph, registry);
    const onRollout = diagnostics.find((d) => d.nodeId === 'rollout' && d.port === 'env');
    expect(onRollout?.message).toMatch(
      /^Incompatible wire from env\.env \(Env\) to rollout\.env \(Env\): Env with agents 'unspecified' does not fit/,
    );
    expect(diagnostics.find((d) => d.nodeId === 'critic' && d.port === 'env')).toBeDefined();
  });

  it('a wrong number of policies fails the run with the node and field named', async () => {
    const graph = matrixGameGraph('ippo', { iterations: 1 });
    graph.edges = graph.edges.filter((e) => !(e.from.node === 'policy1' && e.to.node === 'rollout'));
    graph.nodes.push({ ...graph.nodes.find((n) => n.id === 'policy1')!, id: 'policy2' });
    graph.edges.push(
      { from: { node: 'env', port: 'env' }, to: { node: 'policy2', port: 'env' } },
      { from: { node: 'policy1', port: 'policy' }, to: { node: 'rollout', port: 'policy' } },
      { from: { node: 'policy2', port: 'policy' }, to: { node: 'rollout', port: 'policy' } },
    );
    const result = await executeRun({ graph, registry, backend: 'wasm' });
    expect(result.status).toBe('failed');
    expect(result.error?.message).toMatch(
      /rollout\.policy: wire one shared policy or one per agent \(2\); got 3/,
    );
  });
});
