import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { StudioService } from '../../src-main/api/studio-service.ts';
import { GraphError } from '../../src-main/engine/diagnostics.ts';
import {
  camelIdentifier,
  exportGraph,
  IdentifierPool,
  stringLiteral,
} from '../../src-main/engine/export/index.ts';
import type { GraphFile, GraphNode } from '../../src-main/engine/graph/types.ts';
import { buildCatalog } from '../../src-main/engine/registry.ts';
import { loadTemplate } from '../helpers/graphs.ts';
import { scratchDir, shapeOf, typeCheckModules } from '../helpers/typecheck-export.ts';

const registry = createRegistry();
const catalog = buildCatalog(registry);
const scratch = scratchDir('export-unit');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const ADVERSARIAL = [
  "'",
  '"',
  '`',
  '\\',
  '*/',
  '/*',
  '//',
  '${',
  '}',
  '\n',
  '\r\n',
  '\u2028',
  '\u2029',
  '\u202e',
  '\u0000',
  '\ud83d',
  '🚀',
  '👩‍👩‍👧',
  'constructor',
  '__proto__',
  'prototype',
  'await',
  'class',
  '</script>',
  "'); process.exit(1); ('",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an attack string, not a template.
  '`${process.exit(1)}`',
  '*/ process.exit(1) /*',
];

/** Strings built from adversarial fragments, arbitrary code points and arbitrary UTF-16 code units. */
const userString = (maxLength: number) =>
  fc
    .array(
      fc.oneof(
        fc.constantFrom(...ADVERSARIAL),
        fc.string({ unit: 'binary', maxLength: 4 }),
        fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
        fc.constantFrom('Actor', 'critic', 'PPO', '2nd', ' ', '-', 'é'),
      ),
      { maxLength: 6 },
    )
    .map((parts) => parts.join('').slice(0, maxLength));

/** The value of the one string literal in `const x = <literal>;`, read back by the TypeScript parser. */
const literalValue = (literal: string) => shapeOf(`const x = ${literal};`).strings;

describe('stringLiteral', () => {
  it('escapes every adversarial string into a literal holding exactly that string', () => {
    for (const text of ADVERSARIAL) expect(literalValue(stringLiteral(text))).toEqual([text]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a label that looks like a template.
    expect(stringLiteral("it's `${x}` */")).toBe('"it\'s `${x}` */"');
    expect(stringLiteral('say "hi"')).toBe('\'say "hi"\'');
    expect(stringLiteral(`'"'`)).toBe(`"'\\"'"`);
    expect(stringLiteral('a\u2028b\u202ec\ud83d')).toBe("'a\\u2028b\\u202ec\\ud83d'");
  });

  it('round-trips any string and leaves no line break, separator or lone surrogate raw', () => {
    fc.assert(
      fc.property(userString(40), (text) => {
        const literal = stringLiteral(text);
        expect(literalValue(literal)).toEqual([text]);
        expect(literal).not.toMatch(/[\n\r\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
        expect(literal.isWellFormed()).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('identifiers', () => {
  it('makes camelCase identifiers from labels', () => {
    expect(camelIdentifier('CartPole')).toBe('cartPole');
    expect(camelIdentifier('GAE')).toBe('gae');
    expect(camelIdentifier('value head (v2)')).toBe('valueHeadV2');
    expect(camelIdentifier('2nd critic')).toBe('node2ndCritic');
    expect(camelIdentifier("Critic's value head for PPO")).toBe('criticsValueHeadFor');
    expect(camelIdentifier('🚀 */ ${')).toBe('');
  });

  it('avoids reserved words, object-prototype names, module names and duplicates', () => {
    const pool = new IdentifierPool(['main', 'graph']);
    expect(pool.claim(['constructor'])).toBe('constructorNode');
    expect(pool.claim(['__proto__'])).toBe('proto');
    expect(pool.claim(['class'])).toBe('classNode');
    expect(pool.claim(['Main'])).toBe('main2');
    expect(pool.claim(['graph'])).toBe('graph2');
    expect(pool.claim(['Actor'])).toBe('actor');
    expect(pool.claim(['actor'])).toBe('actor2');
    expect(pool.claim(['', '🚀', 'policy'])).toBe('policy');
    expect(pool.claim(['', ''], 'node')).toBe('node');
  });
});

describe('exportGraph', () => {
  it('refuses a graph with errors, naming node and field', () => {
    const graph = loadTemplate('cartpole-ppo');
    graph.nodes[0].params = { numEnvs: 0 };
    expect(() => exportGraph(graph, registry)).toThrow(GraphError);
    expect(() => exportGraph(graph, registry)).toThrow(/^env\.numEnvs: /);
  });

  it('writes non-default parameters out and omits defaults', () => {
    const graph = loadTemplate('cartpole-ppo');
    graph.nodes[0].params = { numEnvs: 8, maxSteps: 500 };
    const ppo = graph.nodes.find((n) => n.type === 'trainer.ppo')!;
    ppo.params = { ...ppo.params, lr: 0.001, annealLr: false };
    const { code } = exportGraph(graph, registry);
    expect(code).toContain(
      "const cartPole = node('env.cartpole', { id: 'env', label: 'CartPole', version: 1, params: { numEnvs: 8 } });",
    );
    expect(code).toContain('params: { lr: 0.001, annealLr: false }');
    expect(code).not.toContain('maxSteps');
  });

  it('is what StudioApi.exportGraph returns; a broken graph is refused with its diagnostics', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'studio-export-'));
    try {
      const service = new StudioService({ dataDir, log: () => {} });
      expect((await service.getInfo()).capabilities.export).toBe(true);
      const graph = loadTemplate('cartpole-ppo');
      expect(await service.exportGraph(graph)).toEqual(exportGraph(graph, registry));
      graph.nodes[0].params = { numEnvs: 0 };
      const refused = await service.exportGraph(graph).then(
        () => undefined,
        (error: { code: string; diagnostics?: { nodeId?: string; param?: string }[] }) => error,
      );
      expect(refused?.code).toBe('invalid-graph');
      expect(refused?.diagnostics?.[0]).toMatchObject({ nodeId: 'env', param: 'numEnvs' });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('exports the CartPole template readably (snapshot, reviewed by eye)', async () => {
    const exported = exportGraph(loadTemplate('cartpole-ppo'), registry);
    expect(exported.fileName).toBe('ppo-on-cartpole.ts');
    await expect(exported.code).toMatchFileSnapshot('./__snapshots__/cartpole-ppo.export.ts.snap');
  });

  it('type-checks and keeps every user string a literal, for random graphs and adversarial strings', () => {
    const template = loadTemplate('cartpole-ppo');
    const paramsArbitrary = (type: string) => {
      const schema = catalog.nodes.find((n) => n.type === type)!.paramsSchema as {
        properties: Record<string, Record<string, unknown>>;
      };
      const fields: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, p] of Object.entries(schema.properties)) fields[key] = paramValue(p);
      return fc.record(fields, { requiredKeys: [] });
    };
    const graphArbitrary = fc
      .record({
        name: userString(60),
        ids: fc.uniqueArray(
          userString(30).filter((s) => s.length > 0),
          {
            minLength: template.nodes.length,
            maxLength: template.nodes.length,
          },
        ),
        labels: fc.array(fc.option(userString(40), { nil: undefined }), {
          minLength: template.nodes.length,
          maxLength: template.nodes.length,
        }),
        positions: fc.array(
          fc.record({ x: fc.double({ noNaN: true, noDefaultInfinity: true }), y: fc.integer() }),
          {
            minLength: template.nodes.length,
            maxLength: template.nodes.length,
          },
        ),
        params: fc.tuple(...template.nodes.map((n) => paramsArbitrary(n.type))),
        seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        iterations: fc.integer({ min: 1, max: 1e9 }),
        backend: fc.constantFrom('auto', 'tensorflow', 'wasm', 'cpu' as const),
      })
      .map((r) => ({
        adversarial: withStrings(template, r.name, r.ids, r.labels, r),
        benign: withStrings(
          template,
          'G',
          r.ids.map((_, i) => `n${i}`),
          r.labels.map((l, i) => (l === undefined ? undefined : `L${i}`)),
          r,
        ),
        userStrings: [r.name, ...r.ids, ...r.labels.filter((l) => l !== undefined)],
      }));

    const modules: { fileName: string; code: string }[] = [];
    fc.assert(
      fc.property(graphArbitrary, ({ adversarial, benign, userStrings }) => {
        const { code, fileName } = exportGraph(adversarial, registry);
        expect(fileName).toMatch(/^[a-z0-9-]+\.ts$/);
        const shape = shapeOf(code);
        // User text changes literal values and names only: the syntax tree is that of a plain graph.
        expect(shape.kinds).toEqual(shapeOf(exportGraph(benign, registry).code).kinds);
        for (const text of userStrings) expect(shape.strings).toContain(text);
        for (const id of shape.identifiers) expect(id).toMatch(/^[A-Za-z_$][A-Za-z0-9_$]*$/);
        if (modules.length < 24) modules.push({ fileName: `random-${modules.length}.ts`, code });
      }),
      { numRuns: 60 },
    );
    expect(typeCheckModules(scratch, modules)).toEqual([]);
  });
});

function paramValue(p: Record<string, unknown>): fc.Arbitrary<unknown> {
  if (Array.isArray(p.enum)) return fc.constantFrom(...(p.enum as unknown[]));
  if (p.type === 'boolean') return fc.boolean();
  if (p.type === 'integer') return fc.integer({ min: p.minimum as number, max: p.maximum as number });
  if (p.type === 'number') {
    const min = (p.minimum ?? p.exclusiveMinimum) as number;
    return fc.double({
      min,
      max: p.maximum as number,
      minExcluded: p.exclusiveMinimum !== undefined,
      noNaN: true,
    });
  }
  if (p.type === 'array') {
    return fc.array(paramValue(p.items as Record<string, unknown>), {
      minLength: p.minItems as number,
      maxLength: p.maxItems as number,
    });
  }
  throw new Error(`No generator for parameter schema ${JSON.stringify(p)}`);
}

function withStrings(
  template: GraphFile,
  name: string,
  ids: string[],
  labels: (string | undefined)[],
  r: {
    positions: { x: number; y: number }[];
    params: unknown[];
    seed: number;
    iterations: number;
    backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  },
): GraphFile {
  const idOf = new Map(template.nodes.map((n, i) => [n.id, ids[i]]));
  const nodes = template.nodes.map((n, i): GraphNode => {
    const node: GraphNode = {
      id: ids[i],
      type: n.type,
      typeVersion: n.typeVersion,
      params: r.params[i] as Record<string, unknown>,
      position: r.positions[i],
    };
    if (labels[i] !== undefined) node.label = labels[i];
    return node;
  });
  return {
    ...template,
    name,
    seed: r.seed,
    run: { iterations: r.iterations, checkpointEvery: 5, backend: r.backend },
    nodes,
    edges: template.edges.map((e) => ({
      from: { node: idOf.get(e.from.node)!, port: e.from.port },
      to: { node: idOf.get(e.to.node)!, port: e.to.port },
    })),
  };
}
