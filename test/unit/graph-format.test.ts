import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CompileResult, compileGraph } from '../../src-main/engine/compiler.ts';
import { parseGraphText, parseGraphValue } from '../../src-main/engine/graph/parse.ts';
import { DEFAULT_RUN_SETTINGS, GRAPH_FORMAT, GRAPH_VERSION } from '../../src-main/engine/graph/types.ts';
import { expectPlanOrdered, testRegistry, validGraph } from './fixtures/test-nodes.ts';

const registry = testRegistry();

describe('parseGraphText: not a graph', () => {
  it.each([
    ['empty text', ''],
    ['an unclosed object', '{'],
    ['a missing value', '{"nodes":}'],
    ['single quotes', "{'nodes': []}"],
    ['a trailing comma', '{"nodes": [],}'],
    ['a bare word', 'undefined'],
    ['NaN', '{"seed": NaN}'],
    ['a comment', '// graph\n{}'],
    ['two documents', '{} {}'],
  ])('gives one clear error for malformed JSON (%s)', (_, text) => {
    const result = parseGraphText(text);
    expect(result.graph).toBeUndefined();
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0]).toMatchObject({ severity: 'error', code: 'invalid-json' });
    expect(result.diagnostics[0].message).toMatch(/not valid JSON/);
  });

  it.each(['[]', '42', 'null', '"graph"', 'true', '[{"nodes": []}]'])(
    'refuses JSON that is not an object: %s',
    (text) => {
      const result = parseGraphText(text);
      expect(result.graph).toBeUndefined();
      expect(result.diagnostics).toEqual([
        expect.objectContaining({ severity: 'error', code: 'not-an-object' }),
      ]);
      expect(result.diagnostics[0].message).toMatch(/object/);
    },
  );

  it('refuses a value that is not text', () => {
    for (const value of [undefined, null, 42, {}, Buffer.from('{}')]) {
      const result = parseGraphText(value as unknown as string);
      expect(result.diagnostics).toEqual([expect.objectContaining({ severity: 'error', code: 'not-text' })]);
    }
  });

  it('refuses text over 64 MiB without parsing it', () => {
    const result = parseGraphText(' '.repeat(64 * 1024 * 1024 + 1));
    expect(result.diagnostics).toEqual([expect.objectContaining({ code: 'too-large' })]);
  });

  it.each([
    ['missing', undefined],
    ['a string', '1'],
    ['a fraction', 1.5],
    ['negative', -1],
  ])('refuses a version that is %s', (_, version) => {
    const result = parseGraphValue({ ...validGraph(), version });
    expect(result.diagnostics).toEqual([expect.objectContaining({ severity: 'error', code: 'version' })]);
    expect(result.diagnostics[0].message).toContain("'version'");
  });

  it('refuses a file from a newer app and says to update', () => {
    const result = parseGraphText(JSON.stringify({ ...validGraph(), version: GRAPH_VERSION + 1 }));
    expect(result.graph).toBeUndefined();
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0].message).toContain(`file version ${GRAPH_VERSION + 1}`);
    expect(result.diagnostics[0].message).toMatch(/Update the app/);
  });

  it('refuses a file of another format', () => {
    const result = parseGraphValue({ ...validGraph(), format: 'comfyui/workflow' });
    expect(result.diagnostics).toEqual([expect.objectContaining({ code: 'malformed-graph' })]);
    expect(result.diagnostics[0].message).toMatch(/^format:/);
  });

  it('places a structural problem on its node, with the field', () => {
    const graph = validGraph();
    (graph.nodes[2] as Record<string, unknown>).position = { x: 'left', y: 0 };
    graph.run.backend = 'cuda' as never;
    const result = parseGraphValue(graph);
    expect(result.graph).toBeUndefined();
    expect(result.diagnostics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: 'malformed-graph', nodeId: 'rollout', param: 'position.x' }),
        expect.objectContaining({
          code: 'malformed-graph',
          message: expect.stringMatching(/^run\.backend:/),
        }),
      ]),
    );
  });
});

describe('parseGraphText: current files', () => {
  it('reads a valid file back unchanged', () => {
    const result = parseGraphText(JSON.stringify(validGraph()));
    expect(result.diagnostics).toEqual([]);
    expect(result.migratedFrom).toBeUndefined();
    expect(result.graph).toEqual(validGraph());
  });

  it('fills defaults for run settings and node fields', () => {
    const graph = {
      ...validGraph(),
      run: {},
      nodes: [{ id: 'env', type: 'test.env' }],
      edges: [],
    };
    const result = parseGraphValue(graph);
    expect(result.diagnostics).toEqual([]);
    expect(result.graph!.run).toEqual(DEFAULT_RUN_SETTINGS);
    expect(result.graph!.nodes[0]).toEqual({
      id: 'env',
      type: 'test.env',
      typeVersion: 1,
      params: {},
      position: { x: 0, y: 0 },
    });
  });

  it('keeps given run settings and fills only the missing ones', () => {
    const result = parseGraphValue({ ...validGraph(), run: { iterations: 3 } });
    expect(result.graph!.run).toEqual({ ...DEFAULT_RUN_SETTINGS, iterations: 3 });
  });

  it('keeps unknown fields at every level', () => {
    const graph = validGraph() as ReturnType<typeof validGraph> & Record<string, unknown>;
    graph.notes = { author: 'ada', tags: ['ppo'] };
    graph.template = { title: 'T', description: 'D', expectedResult: 'R', duration: '1 min' };
    graph.run.profile = 'fast';
    graph.nodes[0].color = '#fff';
    graph.nodes[0].position = { x: 1, y: 2, snapped: true } as never;
    graph.edges[0].id = 'e0';
    graph.edges[0].style = { dashed: true };
    Object.assign(graph.edges[0].from, { side: 'right' });
    const result = parseGraphText(JSON.stringify(graph));
    expect(result.diagnostics).toEqual([]);
    expect(result.graph).toEqual(graph);
  });
});

describe('parseGraphText: v0 files (the prototype)', () => {
  const v0 = () => ({
    version: 0,
    title: 'Old CartPole',
    randomSeed: 42,
    settings: { iterations: 50, backend: 'wasm', legacyFlag: true },
    author: 'prototype',
    nodes: [
      { id: 'env', kind: 'test.env', config: { copies: 2 }, x: 10, y: 20, color: 'green' },
      { id: 'policy', kind: 'test.policy', config: { activation: 'relu' }, x: 30, y: 40 },
      { id: 'rollout', kind: 'test.rollout', config: {}, x: 50, y: 60 },
      { id: 'credit', kind: 'test.credit', config: { gamma: 0.9 }, x: 70, y: 80 },
      { id: 'trainer', kind: 'test.trainer', config: { learningRate: 0.01 }, x: 90, y: 100 },
    ],
    links: [
      { source: 'env:env', target: 'policy:env', id: 'l0', note: 'kept' },
      { source: 'env:env', target: 'rollout:env' },
      { source: 'policy:policy', target: 'rollout:policy' },
      { source: 'rollout:trajectories', target: 'credit:trajectories' },
      { source: 'policy:policy', target: 'trainer:policy' },
      { source: 'rollout:trajectories', target: 'trainer:trajectories' },
      { source: 'credit:advantages', target: 'trainer:advantages' },
    ],
  });

  it('migrates every field to v1 and keeps unknown ones', () => {
    const result = parseGraphText(JSON.stringify(v0()));
    expect(result.diagnostics).toEqual([]);
    expect(result.migratedFrom).toBe(0);
    const graph = result.graph!;
    expect(graph).toMatchObject({
      format: GRAPH_FORMAT,
      version: GRAPH_VERSION,
      name: 'Old CartPole',
      seed: 42,
      author: 'prototype',
      run: {
        iterations: 50,
        checkpointEvery: DEFAULT_RUN_SETTINGS.checkpointEvery,
        backend: 'wasm',
        legacyFlag: true,
      },
    });
    for (const old of ['title', 'randomSeed', 'settings', 'links']) expect(graph).not.toHaveProperty(old);
    expect(graph.nodes[0]).toEqual({
      id: 'env',
      type: 'test.env',
      typeVersion: 1,
      params: { copies: 2 },
      position: { x: 10, y: 20 },
      color: 'green',
    });
    expect(graph.nodes.map((n) => n.type)).toEqual(v0().nodes.map((n) => n.kind));
    expect(graph.edges).toHaveLength(7);
    expect(graph.edges[0]).toEqual({
      id: 'l0',
      note: 'kept',
      from: { node: 'env', port: 'env' },
      to: { node: 'policy', port: 'env' },
    });
    expect(graph.edges[6]).toEqual({
      from: { node: 'credit', port: 'advantages' },
      to: { node: 'trainer', port: 'advantages' },
    });
  });

  it('compiles after migration, node parameters migrated too', () => {
    const result = compileGraph(parseGraphText(JSON.stringify(v0())).graph, registry);
    expect(result.diagnostics).toEqual([]);
    const trainer = result.plan!.build.find((n) => n.id === 'trainer')!;
    expect(trainer.params).toEqual({ lr: 0.01, epochs: 4 });
  });

  it('recognises a v0 file without a version by its links', () => {
    const { version: _, ...unversioned } = v0();
    const result = parseGraphValue(unversioned);
    expect(result.migratedFrom).toBe(0);
    expect(result.graph!.edges).toHaveLength(7);
  });

  it('fills what a sparse v0 file leaves out', () => {
    const result = parseGraphValue({ version: 0, nodes: [{ id: 'a', kind: 'test.env' }], links: [] });
    expect(result.diagnostics).toEqual([]);
    expect(result.graph).toEqual({
      format: GRAPH_FORMAT,
      version: GRAPH_VERSION,
      name: 'Untitled graph',
      seed: 1,
      run: DEFAULT_RUN_SETTINGS,
      nodes: [{ id: 'a', type: 'test.env', typeVersion: 1, params: {}, position: { x: 0, y: 0 } }],
      edges: [],
    });
  });

  it('splits a link end at its last colon', () => {
    const result = parseGraphValue({
      version: 0,
      title: 't',
      nodes: [],
      links: [{ source: 'group:env:env', target: 'nocolon' }],
    });
    expect(result.graph!.edges[0]).toEqual({
      from: { node: 'group:env', port: 'env' },
      to: { node: 'nocolon', port: '' },
    });
  });

  it('reports what cannot be mapped instead of dropping it silently', () => {
    const result = parseGraphValue({
      version: 0,
      title: 't',
      nodes: [{ id: 'a', kind: 7 }, 'junk'],
      links: [3],
    });
    expect(result.graph).toBeUndefined();
    const paths = result.diagnostics.map((d) => d.message.split(':')[0]);
    expect(paths).toEqual(expect.arrayContaining(['nodes.0.type', 'nodes.1', 'edges.0']));
  });
});

// ---------------------------------------------------------------------------------------------------------
// Robustness: hostile input never makes the reader or the compiler throw, and never pollutes prototypes.

/** Deterministic PRNG (mulberry32): failures are reproducible from the case number. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function deepArray(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** Well-formed answer: diagnostics of the documented shape, of a readable size; a plan iff no errors. */
function expectSane(result: { diagnostics: unknown[]; plan?: unknown; graph?: unknown }): void {
  expect(Array.isArray(result.diagnostics)).toBe(true);
  for (const d of result.diagnostics as CompileResult['diagnostics']) {
    expect(['error', 'warning']).toContain(d.severity);
    expect(typeof d.code).toBe('string');
    expect(d.code.length).toBeGreaterThan(0);
    expect(typeof d.message).toBe('string');
    expect(d.message.length).toBeGreaterThan(0);
    expect(d.message.length).toBeLessThan(1000);
    if (d.nodeId !== undefined) expect(typeof d.nodeId === 'string' && d.nodeId.length <= 200).toBe(true);
  }
  expect(() => JSON.stringify(result.diagnostics)).not.toThrow();
  const hasErrors = (result.diagnostics as CompileResult['diagnostics']).some((d) => d.severity === 'error');
  if ('plan' in result || !('graph' in result)) {
    expect(result.plan !== undefined).toBe(!hasErrors);
    if (result.plan) expectPlanOrdered(result.plan as NonNullable<CompileResult['plan']>);
  } else {
    expect(result.graph !== undefined).toBe(!hasErrors);
  }
}

/** Parse (as text, when it can be written as JSON) and compile; neither may throw. */
function survive(value: unknown): CompileResult {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // BigInt, cycles or extreme nesting: only the compiler's value path applies.
  }
  if (typeof text === 'string') {
    const parsed = parseGraphText(text);
    expectSane(parsed);
    if (parsed.graph) expectSane(compileGraph(parsed.graph, registry));
  }
  const compiled = compileGraph(value, registry);
  expectSane(compiled);
  return compiled;
}

const protoSnapshot = () => ({
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
  fn: Object.getOwnPropertyNames(Function.prototype).sort(),
});

describe('robustness', () => {
  let before: ReturnType<typeof protoSnapshot>;
  beforeAll(() => {
    before = protoSnapshot();
  });
  afterAll(() => {
    // Whatever ran above, no prototype gained a property.
    expect(protoSnapshot()).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('survives garbage bytes', () => {
    const next = random(1);
    for (let i = 0; i < 200; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(next() * 400) }, () => Math.floor(next() * 256));
      for (const text of [new TextDecoder().decode(bytes), Buffer.from(bytes).toString('latin1')]) {
        const result = parseGraphText(text);
        expectSane(result);
      }
    }
    const parsed = parseGraphText('\u0000\uFFFF\uD800{"nodes":[\uDFFF]}');
    expect(parsed.diagnostics[0].code).toBe('invalid-json');
  });

  it('survives 100,000 levels of nested arrays as text, alone and inside a graph', () => {
    const depth = 100_000;
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expectSane(parseGraphText(nested));
    expectSane(parseGraphText('['.repeat(depth)));
    expectSane(parseGraphText(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`));

    const valid = JSON.stringify(validGraph());
    const inParams = valid.replace('"params":{"copies":8}', `"params":{"copies":8,"deep":${nested}}`);
    const result = parseGraphText(inParams);
    expect(result.diagnostics).toEqual([]);
    const compiled = compileGraph(result.graph, registry);
    expect(compiled.plan).toBeDefined();
    expect(compiled.diagnostics).toEqual([expect.objectContaining({ code: 'unknown-param', param: 'deep' })]);

    for (const [from, to] of [
      ['"name":"Test pipeline"', `"name":${nested}`],
      ['"seed":7', `"seed":${nested}`],
      ['"run":{', `"run":{"deep":${nested},`],
      ['"nodes":[', `"nodes":[${nested},`],
      ['"edges":[', `"edges":[${nested},`],
      ['"label":"PPO"', `"label":${nested}`],
    ]) {
      const parsed = parseGraphText(valid.replace(from, to));
      expectSane(parsed);
      if (parsed.graph) expectSane(compileGraph(parsed.graph, registry));
    }
  });

  it('survives deeply nested values handed to the compiler directly', () => {
    const deep = deepArray(100_000);
    const graph = validGraph();
    graph.nodes[1].params.hidden = deep;
    graph.nodes[2].params.deep = deep;
    expect(compileGraph(graph, registry).diagnostics).toEqual([
      expect.objectContaining({ code: 'invalid-param', nodeId: 'policy', param: 'hidden' }),
      expect.objectContaining({ code: 'unknown-param', nodeId: 'rollout', param: 'deep' }),
    ]);
    expectSane(compileGraph(deep, registry));
    expectSane(compileGraph({ ...validGraph(), nodes: deep }, registry));
  });

  it('survives huge strings in every text field, with short messages', () => {
    const huge = 'x'.repeat(10 * 1024 * 1024);
    const cases: [string, (g: ReturnType<typeof validGraph>) => void][] = [
      ['label', (g) => (g.nodes[0].label = huge)],
      ['name', (g) => (g.name = huge)],
      ['id', (g) => (g.nodes[0].id = huge)],
      ['type', (g) => (g.nodes[0].type = huge)],
      ['port', (g) => (g.edges[0].to.port = huge)],
      ['edge end', (g) => (g.edges[0].from.node = huge)],
      ['param value', (g) => (g.nodes[1].params.activation = huge)],
      ['param name', (g) => (g.nodes[1].params[huge] = 1)],
      ['unknown field', (g) => (g.nodes[1].notes = huge)],
    ];
    for (const [field, edit] of cases) {
      const graph = validGraph();
      edit(graph);
      const parsed = parseGraphText(JSON.stringify(graph));
      expectSane(parsed);
      const compiled = compileGraph(graph, registry);
      expectSane(compiled);
      if (field === 'label') {
        expect(parsed.diagnostics).toEqual([expect.objectContaining({ nodeId: 'env', param: 'label' })]);
      }
      if (field === 'unknown field') expect(compiled.plan).toBeDefined();
    }
  });

  it('compiles a graph whose node ids are names found on every object', () => {
    const ids = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    const rename = new Map(['env', 'policy', 'rollout', 'credit', 'trainer'].map((id, i) => [id, ids[i]]));
    const graph = validGraph();
    for (const node of graph.nodes) node.id = rename.get(node.id)!;
    for (const edge of graph.edges) {
      edge.from.node = rename.get(edge.from.node)!;
      edge.to.node = rename.get(edge.to.node)!;
    }
    const parsed = parseGraphText(JSON.stringify(graph));
    expect(parsed.diagnostics).toEqual([]);
    const result = compileGraph(parsed.graph, registry);
    expect(result.diagnostics).toEqual([]);
    expectPlanOrdered(result.plan!);
    expect(result.plan!.schedule).toEqual(['toString', 'hasOwnProperty', 'valueOf']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('does not let __proto__ and constructor keys pollute prototypes or inject values', () => {
    const valid = JSON.stringify(validGraph());
    const poison = '{"polluted":true,"lr":0.5,"iterations":5,"label":"evil","toString":1}';
    const variants = [
      valid.replace('"params":{"lr":0.001}', `"params":{"__proto__":${poison}}`),
      valid.replace('"params":{"lr":0.001}', `"params":{"constructor":{"prototype":${poison}}}`),
      valid.replace('"run":{', `"run":{"__proto__":${poison},`),
      valid.replace('"id":"credit",', `"id":"credit","__proto__":${poison},`),
      valid.replace('{"format"', `{"__proto__":${poison},"constructor":{"prototype":${poison}},"format"`),
      valid.replace(
        '"from":{"node":"env","port":"env"}',
        `"from":{"node":"env","port":"env","__proto__":${poison}}`,
      ),
      valid.replace('"from":{"node":"env","port":"env"}', '"from":{"node":"env","port":"__proto__"}'),
      valid.replace('"type":"test.credit"', '"type":"__proto__"'),
      valid.replace('"type":"test.credit"', '"type":"constructor"'),
      valid.replace('"params":{"lr":0.001}', `"params":{"lr":{"__proto__":${poison}}}`),
    ];
    for (const text of variants) {
      const parsed = parseGraphText(text);
      expectSane(parsed);
      const result = compileGraph(parsed.graph ?? JSON.parse(text), registry);
      expectSane(result);
      if (result.plan) {
        const trainer = result.plan.build.find((n) => n.id === 'trainer')!;
        expect(trainer.params.lr).not.toBe(0.5);
        expect(result.plan.graph.run.iterations).toBe(20);
        expect(result.plan.build.find((n) => n.id === 'credit')!.label).toBe('credit');
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.getPrototypeOf(parsed.graph ?? {})).toBe(Object.prototype);
    }
    // Through a migration of a v0 file too.
    const v0 = `{"version":0,"__proto__":${poison},"nodes":[{"id":"__proto__","kind":"test.env","config":{"__proto__":${poison}}}],"links":[{"source":"__proto__:env","target":"constructor:env","__proto__":${poison}}]}`;
    expectSane(compileGraph(parseGraphText(v0).graph, registry));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('survives null, a number, a string, an array and an object in every position', () => {
    const base = validGraph();
    const paths: (string | number)[][] = [];
    const walk = (value: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (typeof value === 'object' && value !== null) {
        for (const [key, child] of Object.entries(value))
          walk(child, [...path, Array.isArray(value) ? +key : key]);
      }
    };
    walk(base, []);
    const replacements: unknown[] = [null, 0, -1, 2 ** 53, Number.NaN, '', 'x', [], [null], {}, true];
    let cases = 0;
    for (const path of paths) {
      for (const replacement of [...replacements, undefined]) {
        const graph: Record<string | number, unknown> = validGraph();
        if (path.length === 0) {
          survive(replacement);
          continue;
        }
        let parent = graph;
        for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
        const last = path.at(-1)!;
        if (replacement === undefined) delete parent[last];
        else parent[last] = structuredClone(replacement);
        survive(graph);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(500);
  });

  it('survives odd values handed to the compiler directly', () => {
    const throwing = new Proxy(
      {},
      {
        get() {
          throw new Error('hostile getter');
        },
        has() {
          throw new Error('hostile has');
        },
        ownKeys() {
          throw new Error('hostile keys');
        },
      },
    );
    const selfReferencing: Record<string, unknown> = validGraph();
    (
      (selfReferencing.nodes as { params: Record<string, unknown> }[])[0].params as Record<string, unknown>
    ).self = selfReferencing;
    const values: unknown[] = [
      undefined,
      null,
      0,
      'graph',
      Symbol('graph'),
      10n,
      () => validGraph(),
      [],
      new Map(),
      new Date(0),
      Object.create(null),
      throwing,
      { ...validGraph(), nodes: throwing },
      { ...validGraph(), seed: 10n },
      { ...validGraph(), nodes: [{ ...validGraph().nodes[0], params: { copies: 10n } }] },
      { ...validGraph(), nodes: [{ ...validGraph().nodes[0], id: Symbol('env') }] },
      selfReferencing,
    ];
    for (const value of values) expectSane(compileGraph(value, registry));
    expect(compileGraph(selfReferencing, registry).diagnostics).toEqual([
      expect.objectContaining({ code: 'unknown-param', param: 'self' }),
    ]);
  });

  it('survives 600 random mutations of a valid graph', () => {
    const next = random(20240611);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    const strings = [
      'env',
      'policy',
      'rollout',
      'credit',
      'trainer',
      'ghost',
      'test.env',
      'test.text-env',
      'test.probe',
      'test.smooth',
      'metrics',
      'extra',
      'trajectories',
      '__proto__',
      'constructor',
      'toString',
      '',
      ':',
      'x'.repeat(300),
    ];
    const values = (): unknown =>
      pick<() => unknown>([
        () => pick(strings),
        () => Math.floor(next() * 10) - 3,
        () => next() * 1e6,
        () => pick([Number.NaN, Number.POSITIVE_INFINITY, -0, 2 ** 31, 1e308]),
        () => null,
        () => pick([true, false]),
        () => [],
        () => ({}),
        () => [pick(strings), 1],
        () => ({ node: pick(strings), port: pick(strings) }),
        () => deepArray(50),
      ])();

    for (let n = 0; n < 600; n++) {
      const graph: Record<string, unknown> = validGraph();
      // Gather every container, then apply a few edits to random ones.
      const containers: Record<string | number, unknown>[] = [];
      const gather = (value: unknown) => {
        if (typeof value !== 'object' || value === null) return;
        containers.push(value as Record<string, unknown>);
        for (const child of Object.values(value)) gather(child);
      };
      gather(graph);
      const edits = 1 + Math.floor(next() * 4);
      for (let e = 0; e < edits; e++) {
        const target = pick(containers);
        const keys = Object.keys(target);
        const key: string | number = Array.isArray(target)
          ? Math.floor(next() * (target.length + 1))
          : pick(keys);
        switch (Math.floor(next() * 6)) {
          case 0:
            target[key] = values();
            break;
          case 1:
            if (Array.isArray(target)) target.splice(Number(key), 1);
            else delete target[key];
            break;
          case 2:
            // An own key with a hostile name, as JSON.parse would make it.
            Object.defineProperty(target, pick(strings), {
              value: values(),
              enumerable: true,
              writable: true,
              configurable: true,
            });
            break;
          case 3: {
            const nodes = graph.nodes as unknown[];
            if (Array.isArray(nodes) && nodes.length) nodes.push(structuredClone(pick(nodes)));
            break;
          }
          case 4: {
            const edges = graph.edges as { from?: unknown; to?: unknown }[];
            if (Array.isArray(edges) && edges.length) {
              const edge = pick(edges);
              if (edge && typeof edge === 'object') [edge.from, edge.to] = [edge.to, edge.from];
            }
            break;
          }
          default:
            if (typeof target[key] === 'string') target[key] = pick(strings);
            else if (typeof target[key] === 'number')
              target[key] = (target[key] as number) + pick([-1, 1, 0.5]);
            else target[key] = values();
        }
      }
      try {
        survive(graph);
      } catch (error) {
        throw new Error(`mutation case ${n} failed: ${(error as Error).message}`);
      }
    }
  });

  it('survives 600 random text edits of a valid file', () => {
    const next = random(7);
    const valid = JSON.stringify(validGraph(), null, 1);
    const alphabet = '{}[]:,"\\0123456789.-eEtrufalsn _abcxyz\u0000\u00e9\uD83D';
    let graphs = 0;
    for (let n = 0; n < 600; n++) {
      let text = valid;
      const edits = 1 + Math.floor(next() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(next() * text.length);
        const char = alphabet[Math.floor(next() * alphabet.length)];
        const op = Math.floor(next() * 3);
        text =
          op === 0
            ? text.slice(0, at) + char + text.slice(at)
            : op === 1
              ? text.slice(0, at) + text.slice(at + 1)
              : text.slice(0, at) + char + text.slice(at + 1);
      }
      const parsed = parseGraphText(text);
      expectSane(parsed);
      if (parsed.graph) {
        graphs++;
        expectSane(compileGraph(parsed.graph, registry));
      }
    }
    // Some edits land in strings and whitespace: those files still read.
    expect(graphs).toBeGreaterThan(0);
  });
});
