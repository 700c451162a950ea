import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type CompileResult, compileGraph } from '../../src-main/engine/compiler.ts';
import type { Diagnostic } from '../../src-main/engine/diagnostics.ts';
import type { GraphFile, GraphNode } from '../../src-main/engine/graph/types.ts';
import { defineNode } from '../../src-main/engine/node-api.ts';
import { buildCatalog, NodeRegistry } from '../../src-main/engine/registry.ts';
import {
  expectPlanOrdered,
  testDefinitions,
  testEnv,
  testRegistry,
  testTrainer,
  validGraph,
  wire,
} from './fixtures/test-nodes.ts';

const registry = testRegistry();
const compile = (graph: unknown): CompileResult => compileGraph(graph, registry);

/** The valid graph, changed by `edit`. */
function graphWith(edit: (graph: GraphFile) => void): GraphFile {
  const graph = validGraph();
  edit(graph);
  return graph;
}

const nodeOf = (graph: GraphFile, id: string): GraphNode => graph.nodes.find((n) => n.id === id)!;
const errors = (result: CompileResult) => result.diagnostics.filter((d) => d.severity === 'error');
const withCode = (result: CompileResult, code: string) => result.diagnostics.filter((d) => d.code === code);

/** Exactly one diagnostic with this code; returns it. */
function only(result: CompileResult, code: string): Diagnostic {
  const found = withCode(result, code);
  expect(found, JSON.stringify(result.diagnostics, null, 1)).toHaveLength(1);
  return found[0];
}

function paramError(params: Record<string, unknown>, nodeId = 'trainer'): Diagnostic {
  const result = compile(graphWith((g) => Object.assign(nodeOf(g, nodeId).params, params)));
  expect(result.plan).toBeUndefined();
  return only(result, 'invalid-param');
}

describe('compileGraph: a valid graph', () => {
  it('compiles without diagnostics', () => {
    const result = compile(validGraph());
    expect(result.diagnostics).toEqual([]);
    expect(result.plan).toBeDefined();
  });

  it('builds every node after its inputs and schedules only stream nodes, in dependency order', () => {
    const plan = compile(validGraph()).plan!;
    expect(plan.build.map((n) => n.id).sort()).toEqual(['credit', 'env', 'policy', 'rollout', 'trainer']);
    expectPlanOrdered(plan);
    // env and policy are components only: built once, never stepped.
    expect(plan.schedule).toEqual(['rollout', 'credit', 'trainer']);
  });

  it('orders nodes by their wires, not by their place in the file', () => {
    const graph = graphWith((g) => g.nodes.reverse());
    const plan = compile(graph).plan!;
    expectPlanOrdered(plan);
    expect(plan.schedule).toEqual(['rollout', 'credit', 'trainer']);
  });

  it('fills parameter defaults, keeps given values and records wires per input port', () => {
    const plan = compile(validGraph()).plan!;
    const byId = new Map(plan.build.map((n) => [n.id, n]));
    expect(byId.get('policy')!.params).toEqual({ hidden: 64, activation: 'tanh' });
    expect(byId.get('trainer')!.params).toEqual({ lr: 1e-3, epochs: 4 });
    expect(byId.get('env')!.params).toEqual({ copies: 8 });
    expect(byId.get('rollout')!.inputs).toEqual({
      env: [{ node: 'env', port: 'env' }],
      policy: [{ node: 'policy', port: 'policy' }],
    });
    expect(byId.get('trainer')!.label).toBe('PPO');
    expect(byId.get('env')!.label).toBe('env');
    expect(byId.get('trainer')!.definition).toBe(testTrainer);
  });

  it('does not change the graph it was given', () => {
    const graph = validGraph();
    const copy = structuredClone(graph);
    compile(graph);
    expect(graph).toEqual(copy);
  });
});

describe('compileGraph: nodes', () => {
  it('reports an unknown node type on the node', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'credit').type = 'credit.vtrace-v9')));
    const d = only(result, 'unknown-node-type');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'credit' });
    expect(d.message).toContain("'credit.vtrace-v9'");
    expect(d.message).toMatch(/newer app|plugin/);
    expect(result.plan).toBeUndefined();
  });

  it('reports a duplicate id', () => {
    const result = compile(graphWith((g) => g.nodes.push({ ...nodeOf(g, 'env'), position: { x: 5, y: 5 } })));
    const d = only(result, 'duplicate-id');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'env' });
    expect(d.message).toContain("'env'");
    expect(result.plan).toBeUndefined();
  });

  it('reports a duplicate id even when the first node with that id is itself invalid', () => {
    const result = compile(
      graphWith((g) => {
        nodeOf(g, 'env').type = 'no.such-type';
        g.nodes.push({ id: 'env', type: 'test.env', typeVersion: 1, params: {}, position: { x: 0, y: 0 } });
      }),
    );
    expect(only(result, 'unknown-node-type').nodeId).toBe('env');
    expect(only(result, 'duplicate-id').nodeId).toBe('env');
  });
});

describe('compileGraph: wires', () => {
  it('reports a wire to a node that does not exist, placed on the node that does', () => {
    const result = compile(graphWith((g) => g.edges.push(wire('env.env', 'ghost.env'))));
    const d = only(result, 'bad-edge');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'env', edge: 7 });
    expect(d.message).toContain("'ghost'");
    expect(d.message).toMatch(/does not exist/);
  });

  it('reports a wire from a node that does not exist', () => {
    const result = compile(graphWith((g) => g.edges.push(wire('ghost.metrics', 'trainer.extra'))));
    const d = only(result, 'bad-edge');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer', edge: 7 });
    expect(d.message).toContain("'ghost'");
  });

  it('reports a wire between two nodes that do not exist', () => {
    const result = compile(graphWith((g) => g.edges.push(wire('ghost.a', 'phantom.b'))));
    const d = only(result, 'bad-edge');
    expect(d.severity).toBe('error');
    expect(d.nodeId).toBeUndefined();
    expect(d.message).toContain("'ghost'");
  });

  it('reports a missing output port on the source node', () => {
    const result = compile(graphWith((g) => (g.edges[3].from.port = 'trajectorys')));
    const d = only(result, 'bad-edge');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'rollout', port: 'trajectorys', edge: 3 });
    expect(d.message).toContain("output port 'trajectorys'");
  });

  it('reports a missing input port on the target node', () => {
    const result = compile(graphWith((g) => (g.edges[3].to.port = 'trajs')));
    const d = only(result, 'bad-edge');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'credit', port: 'trajs', edge: 3 });
    expect(d.message).toContain("input port 'trajs'");
  });

  it('does not take an input port for an output port of the same name', () => {
    // `env` is an input of the policy, not an output of it.
    const result = compile(graphWith((g) => g.edges.push(wire('policy.env', 'rollout.env'))));
    expect(only(result, 'bad-edge')).toMatchObject({ nodeId: 'policy', port: 'env' });
  });

  it('refuses a wire between different port types and names both types', () => {
    const result = compile(graphWith((g) => (g.edges[4] = wire('env.env', 'trainer.policy'))));
    const d = only(result, 'incompatible-wire');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer', port: 'policy', edge: 4 });
    expect(d.message).toContain('Env');
    expect(d.message).toContain('Policy');
    expect(d.message).toContain('env.env');
    // The refused wire leaves the input unconnected, which is reported too.
    expect(only(result, 'missing-input')).toMatchObject({ nodeId: 'trainer', port: 'policy' });
  });

  it('refuses a text Env into a vector policy and says why', () => {
    const result = compile(
      graphWith((g) => {
        g.nodes.push({
          id: 'chat',
          type: 'test.text-env',
          typeVersion: 1,
          params: {},
          position: { x: 0, y: 0 },
        });
        g.edges[0] = wire('chat.env', 'policy.env');
      }),
    );
    const d = only(result, 'incompatible-wire');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'policy', port: 'env', edge: 0 });
    expect(d.message).toContain("observation 'text'");
    expect(d.message).toContain("'vector'");
    expect(result.plan).toBeUndefined();
  });

  it('reports a required input left unconnected, naming the port and its type', () => {
    const result = compile(graphWith((g) => g.edges.splice(3, 1)));
    const d = only(result, 'missing-input');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'credit', port: 'trajectories' });
    expect(d.message).toContain("'trajectories'");
    expect(d.message).toContain('Trajectories');
    expect(result.plan).toBeUndefined();
  });

  it('does not require an optional input', () => {
    const plan = compile(validGraph()).plan!;
    expect(plan.build.find((n) => n.id === 'trainer')!.inputs.extra).toBeUndefined();
  });

  it('refuses a second wire into a single-wire input', () => {
    const result = compile(
      graphWith((g) => {
        g.nodes.push({ id: 'env2', type: 'test.env', typeVersion: 1, params: {}, position: { x: 0, y: 0 } });
        g.edges.push(wire('env2.env', 'policy.env'));
      }),
    );
    const d = only(result, 'too-many-wires');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'policy', port: 'env', edge: 7 });
    expect(d.message).toContain('env2.env');
    expect(d.message).toMatch(/takes one wire/);
  });

  it('accepts several wires into a `multiple` input, in edge order', () => {
    const result = compile(
      graphWith((g) => {
        for (const id of ['probeB', 'probeA']) {
          g.nodes.push({ id, type: 'test.probe', typeVersion: 1, params: {}, position: { x: 0, y: 0 } });
          g.edges.push(
            wire('rollout.trajectories', `${id}.trajectories`),
            wire(`${id}.metrics`, 'trainer.extra'),
          );
        }
      }),
    );
    expect(result.diagnostics).toEqual([]);
    const plan = result.plan!;
    expect(plan.build.find((n) => n.id === 'trainer')!.inputs.extra).toEqual([
      { node: 'probeB', port: 'metrics' },
      { node: 'probeA', port: 'metrics' },
    ]);
    expectPlanOrdered(plan);
    expect(plan.schedule).toContain('probeA');
  });

  it('reports every node on a stream cycle, and not the nodes merely downstream of it', () => {
    const result = compile(
      graphWith((g) => {
        for (const id of ['smoothA', 'smoothB']) {
          g.nodes.push({ id, type: 'test.smooth', typeVersion: 1, params: {}, position: { x: 0, y: 0 } });
        }
        g.edges.push(
          wire('trainer.metrics', 'smoothA.metrics'),
          wire('smoothA.metrics', 'trainer.extra'),
          wire('smoothA.metrics', 'smoothB.metrics'),
        );
      }),
    );
    const cycle = withCode(result, 'cycle');
    expect(cycle.map((d) => d.nodeId).sort()).toEqual(['smoothA', 'trainer']);
    for (const d of cycle) {
      expect(d.severity).toBe('error');
      expect(d.message).toMatch(/cycle/);
    }
    expect(result.plan).toBeUndefined();
  });

  it('reports a node wired into itself as a cycle', () => {
    const result = compile(graphWith((g) => g.edges.push(wire('trainer.metrics', 'trainer.extra'))));
    expect(only(result, 'cycle')).toMatchObject({ severity: 'error', nodeId: 'trainer' });
  });

  it('does not call an input unconnected when the node wired into it has problems of its own', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'policy').params.hidden = -1)));
    expect(result.diagnostics).toEqual([
      expect.objectContaining({ code: 'invalid-param', nodeId: 'policy' }),
    ]);
    const unknown = compile(graphWith((g) => (nodeOf(g, 'credit').type = 'credit.unknown')));
    expect(unknown.diagnostics).toEqual([
      expect.objectContaining({ code: 'unknown-node-type', nodeId: 'credit' }),
    ]);
  });

  it('reports problems of every kind at once', () => {
    const result = compile(
      graphWith((g) => {
        nodeOf(g, 'env').params.copies = 0;
        nodeOf(g, 'credit').type = 'nope';
        g.edges.push(wire('policy.policy', 'rollout.nothing'));
      }),
    );
    expect(result.diagnostics.map((d) => d.code).sort()).toEqual(
      expect.arrayContaining(['bad-edge', 'invalid-param', 'unknown-node-type']),
    );
  });
});

describe('compileGraph: parameters', () => {
  it.each([
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['-Infinity', Number.NEGATIVE_INFINITY, '-Infinity'],
  ])('refuses %s and shows the value', (_, value, shown) => {
    const d = paramError({ lr: value });
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer', param: 'lr' });
    expect(d.message).toContain("'lr'");
    expect(d.message).toContain(shown);
  });

  it('refuses a value above its bound', () => {
    const d = paramError({ lr: 2 });
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer', param: 'lr' });
    expect(d.message).toContain("'lr'");
    expect(d.message).toMatch(/1/);
  });

  it('refuses a value below its bound', () => {
    const d = paramError({ epochs: 0 });
    expect(d).toMatchObject({ param: 'epochs' });
    expect(d.message).toContain("'epochs'");
  });

  it('refuses a fraction where a whole number is needed', () => {
    expect(paramError({ epochs: 2.5 })).toMatchObject({ param: 'epochs', code: 'invalid-param' });
  });

  it('refuses a number that must be positive', () => {
    expect(paramError({ lr: 0 }).param).toBe('lr');
    expect(paramError({ lr: -1e-3 }).param).toBe('lr');
  });

  it('refuses a string where a number is needed, and shows the string', () => {
    const d = paramError({ lr: '0.001' });
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer', param: 'lr' });
    expect(d.message).toContain('"0.001"');
    expect(d.message).toMatch(/number/);
  });

  it('shortens a long string value in the message', () => {
    const d = paramError({ lr: 'x'.repeat(5000) });
    expect(d.message.length).toBeLessThan(200);
  });

  it('refuses a value outside an enum and lists the choices', () => {
    const d = paramError({ activation: 'sigmoid' }, 'policy');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'policy', param: 'activation' });
    expect(d.message).toContain('"sigmoid"');
    expect(d.message).toContain('tanh');
    expect(d.message).toContain('relu');
  });

  it.each([
    ['null', null],
    ['a boolean', true],
    ['an array', [3]],
    ['an object', { value: 3 }],
  ])('refuses %s where a number is needed', (_, value) => {
    expect(paramError({ epochs: value }).param).toBe('epochs');
  });

  it('reports every bad parameter of a node, each by name', () => {
    const result = compile(
      graphWith((g) => Object.assign(nodeOf(g, 'trainer').params, { lr: -1, epochs: 'many' })),
    );
    expect(
      withCode(result, 'invalid-param')
        .map((d) => d.param)
        .sort(),
    ).toEqual(['epochs', 'lr']);
  });

  it('warns about an unknown parameter but compiles, without passing it on', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'credit').params.lambda = 0.95)));
    const d = only(result, 'unknown-param');
    expect(d).toMatchObject({ severity: 'warning', nodeId: 'credit', param: 'lambda' });
    expect(d.message).toContain("'lambda'");
    expect(errors(result)).toEqual([]);
    expect(result.plan!.build.find((n) => n.id === 'credit')!.params).toEqual({ gamma: 0.99 });
  });

  it('shortens a very long unknown parameter name in the message', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'credit').params['k'.repeat(100_000)] = 1)));
    expect(only(result, 'unknown-param').message.length).toBeLessThan(200);
  });
});

describe('compileGraph: versions', () => {
  it('refuses a node saved by a newer version of its type', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'trainer').typeVersion = 3)));
    const d = only(result, 'newer-node-version');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer' });
    expect(d.message).toContain('test.trainer');
    expect(d.message).toContain('v3');
    expect(d.message).toContain('v2');
    expect(result.plan).toBeUndefined();
  });

  it('migrates v1 parameters to v2 (learningRate -> lr)', () => {
    const result = compile(
      graphWith((g) => {
        const trainer = nodeOf(g, 'trainer');
        trainer.typeVersion = 1;
        trainer.params = { learningRate: 0.01, epochs: 8 };
      }),
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.plan!.build.find((n) => n.id === 'trainer')!.params).toEqual({ lr: 0.01, epochs: 8 });
  });

  it('checks the migrated parameters like any others', () => {
    const result = compile(
      graphWith((g) => {
        const trainer = nodeOf(g, 'trainer');
        trainer.typeVersion = 1;
        trainer.params = { learningRate: 5 };
      }),
    );
    expect(only(result, 'invalid-param')).toMatchObject({ nodeId: 'trainer', param: 'lr' });
  });

  it('does not migrate parameters that are already current', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'trainer').params = { learningRate: 0.5 })));
    expect(only(result, 'unknown-param').param).toBe('learningRate');
    expect(result.plan!.build.find((n) => n.id === 'trainer')!.params.lr).toBe(3e-4);
  });

  it('reports a version with no migration step', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'trainer').typeVersion = 0)));
    const d = only(result, 'no-migration');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'trainer' });
    expect(d.message).toContain('v0');
  });

  it('reports a migration that fails on odd parameters instead of throwing', () => {
    const fragile = defineNode({
      ...testEnv,
      version: 2,
      migrations: {
        1: (params) => ({ copies: (params.layout as { copies: number }).copies }),
      },
    });
    const result = compileGraph(
      graphWith((g) => Object.assign(nodeOf(g, 'env'), { typeVersion: 1, params: {} })),
      new NodeRegistry([...testDefinitions.filter((d) => d !== testEnv), fragile]),
    );
    const d = only(result, 'no-migration');
    expect(d).toMatchObject({ severity: 'error', nodeId: 'env' });
    expect(d.message).toContain('v1');
  });

  it('refuses a file saved by a newer app', () => {
    const result = compile(graphWith((g) => (g.version = 2)));
    const d = only(result, 'version');
    expect(d.severity).toBe('error');
    expect(d.message).toMatch(/newer version/);
    expect(d.message).toMatch(/Update the app/);
    expect(result.plan).toBeUndefined();
  });

  it('passes structural problems found on load through, placed on the node', () => {
    const result = compile(graphWith((g) => ((nodeOf(g, 'credit') as Record<string, unknown>).type = 42)));
    expect(result.plan).toBeUndefined();
    expect(only(result, 'malformed-graph')).toMatchObject({
      severity: 'error',
      nodeId: 'credit',
      param: 'type',
    });
  });
});

describe('compileGraph: whole graph', () => {
  it('refuses a graph with nothing to train', () => {
    const result = compile(
      graphWith((g) => {
        g.nodes = g.nodes.filter((n) => n.id !== 'trainer');
        g.edges = g.edges.filter((e) => e.to.node !== 'trainer');
      }),
    );
    const d = only(result, 'nothing-to-train');
    expect(d.severity).toBe('error');
    expect(d.nodeId).toBeUndefined();
    expect(d.message).toMatch(/trainer/);
    expect(result.plan).toBeUndefined();
  });

  it('refuses an empty graph', () => {
    const result = compile(graphWith((g) => Object.assign(g, { nodes: [], edges: [] })));
    const d = only(result, 'nothing-to-train');
    expect(d.severity).toBe('error');
    expect(d.message).toMatch(/empty/);
    expect(result.plan).toBeUndefined();
  });

  it('warns about nodes that feed no trainer, compiles, and leaves them out of the plan', () => {
    const result = compile(
      graphWith((g) => {
        g.nodes.push({ id: 'spare', type: 'test.env', typeVersion: 1, params: {}, position: { x: 0, y: 0 } });
        g.nodes.push({
          id: 'watch',
          type: 'test.probe',
          typeVersion: 1,
          params: {},
          position: { x: 0, y: 0 },
        });
        g.edges.push(wire('rollout.trajectories', 'watch.trajectories'));
      }),
    );
    expect(errors(result)).toEqual([]);
    const unused = withCode(result, 'unused-node');
    expect(unused.map((d) => d.nodeId).sort()).toEqual(['spare', 'watch']);
    for (const d of unused) {
      expect(d.severity).toBe('warning');
      expect(d.message).toMatch(/trainer/);
    }
    expect(result.plan!.build.map((n) => n.id)).not.toContain('spare');
    expect(result.plan!.schedule).not.toContain('watch');
  });

  it('does not call nodes unused when the trainer they feed has problems of its own', () => {
    const result = compile(graphWith((g) => (nodeOf(g, 'trainer').params.lr = 5)));
    expect(result.diagnostics).toEqual([
      expect.objectContaining({ code: 'invalid-param', nodeId: 'trainer' }),
    ]);
  });

  it('plans a graph with two trainers sharing components', () => {
    const result = compile(
      graphWith((g) => {
        g.nodes.push({
          id: 'trainer2',
          type: 'test.trainer',
          typeVersion: 2,
          params: {},
          position: { x: 0, y: 0 },
        });
        g.edges.push(
          wire('policy.policy', 'trainer2.policy'),
          wire('rollout.trajectories', 'trainer2.trajectories'),
          wire('credit.advantages', 'trainer2.advantages'),
          wire('trainer.metrics', 'trainer2.extra'),
        );
      }),
    );
    expect(result.diagnostics).toEqual([]);
    expectPlanOrdered(result.plan!);
    expect(result.plan!.schedule).toEqual(['rollout', 'credit', 'trainer', 'trainer2']);
  });
});

describe('compileGraph: scale', () => {
  it('answers quickly for a loop of thousands of nodes', { timeout: 20_000 }, () => {
    const count = 4000; // two of these stay under the 10,000-node limit of a file
    const result = compile(
      graphWith((g) => {
        for (let i = 0; i < count; i++) {
          g.nodes.push({
            id: `s${i}`,
            type: 'test.smooth',
            typeVersion: 1,
            params: {},
            position: { x: 0, y: 0 },
          });
          g.edges.push(wire(`s${i}.metrics`, `s${(i + 1) % count}.metrics`));
        }
        // A chain hanging off the loop is downstream of it, not on it.
        for (let i = 0; i < count; i++) {
          g.nodes.push({
            id: `t${i}`,
            type: 'test.smooth',
            typeVersion: 1,
            params: {},
            position: { x: 0, y: 0 },
          });
          g.edges.push(wire(i === 0 ? 's0.metrics' : `t${i - 1}.metrics`, `t${i}.metrics`));
        }
        g.edges.push(wire(`t${count - 1}.metrics`, 'trainer.extra'));
      }),
    );
    const cycle = withCode(result, 'cycle');
    expect(cycle, JSON.stringify(result.diagnostics.slice(0, 3))).toHaveLength(count);
    expect(cycle.every((d) => d.nodeId!.startsWith('s'))).toBe(true);
  });

  it('answers quickly for a long chain and for tens of thousands of wires into one port', {
    timeout: 20_000,
  }, () => {
    const result = compile(
      graphWith((g) => {
        const count = 5000;
        for (let i = 0; i < count; i++) {
          g.nodes.push({
            id: `s${i}`,
            type: 'test.smooth',
            typeVersion: 1,
            params: {},
            position: { x: 0, y: 0 },
          });
          g.edges.push(wire(i === 0 ? 'trainer.metrics' : `s${i - 1}.metrics`, `s${i}.metrics`));
        }
        g.nodes.push({
          id: 'sink',
          type: 'test.trainer',
          typeVersion: 2,
          params: {},
          position: { x: 0, y: 0 },
        });
        g.edges.push(
          wire('policy.policy', 'sink.policy'),
          wire('rollout.trajectories', 'sink.trajectories'),
          wire('credit.advantages', 'sink.advantages'),
        );
        while (g.edges.length < 100_000) g.edges.push(wire(`s${count - 1}.metrics`, 'sink.extra'));
      }),
    );
    expect(result.diagnostics).toEqual([]);
    const plan = result.plan!;
    expect(plan.build.at(-1)!.id).toBe('sink');
    expect(plan.build.at(-1)!.inputs.extra.length).toBeGreaterThan(90_000);
    expect(plan.schedule.indexOf('s4999')).toBeGreaterThan(plan.schedule.indexOf('s0'));
  });
});

describe('NodeRegistry', () => {
  it('refuses a type registered twice', () => {
    expect(() => new NodeRegistry([testEnv, testEnv])).toThrow(/'test.env' is registered twice/);
  });

  it.each(['Widget', 'constructor', 'toString', '__proto__'])('refuses the unknown port type %s', (type) => {
    const odd = defineNode({ ...testEnv, type: 'test.odd', outputs: [{ name: 'out', type }] });
    expect(() => new NodeRegistry([odd])).toThrow(/unknown port type/);
  });

  it('lists definitions and builds a JSON catalog with defaults and schemas', () => {
    const catalog = buildCatalog(registry);
    expect(catalog.nodes.map((n) => n.type)).toEqual(testDefinitions.map((d) => d.type));
    const trainer = catalog.nodes.find((n) => n.type === 'test.trainer')!;
    expect(trainer).toMatchObject({ version: 2, trains: true, defaults: { lr: 3e-4, epochs: 4 } });
    expect(JSON.stringify(trainer.paramsSchema)).toContain('"maximum":100');
    expect(catalog.nodes.find((n) => n.type === 'test.env')!.trains).toBe(false);
    expect(() => JSON.stringify(catalog)).not.toThrow();
  });

  it('answers undefined for an unknown type, including names found on every object', () => {
    for (const type of ['nope', 'constructor', '__proto__', 'toString'])
      expect(registry.get(type)).toBeUndefined();
  });
});

// Keep the test registry honest: a definition that is not valid zod would fail every test above obscurely.
it('fixture parameter schemas are zod objects', () => {
  for (const d of testDefinitions) expect(d.params).toBeInstanceOf(z.ZodObject);
});
