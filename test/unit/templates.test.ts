/** Every template is a promise: it compiles with no diagnostics and its card says what it will do. */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { meetsCheck, templateNames } from '../bench/templates.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const registry = createRegistry();

describe.each(templateNames())('template %s', (name) => {
  const graph = loadTemplate(name) as ReturnType<typeof loadTemplate> & {
    template?: Record<string, unknown> & { check?: { metric: string; atLeast?: number; atMost?: number } };
  };

  it('compiles with no diagnostics', () => {
    const { plan, diagnostics } = compileGraph(graph, registry);
    expect(diagnostics).toEqual([]);
    expect(plan).toBeDefined();
  });

  it('has a complete card whose check names a metric of one of its nodes', () => {
    const card = graph.template;
    expect(card).toBeDefined();
    for (const field of ['title', 'description', 'expectedResult', 'duration', 'paper']) {
      expect(typeof card?.[field], `template.${field}`).toBe('string');
      expect(String(card?.[field]).length, `template.${field}`).toBeGreaterThan(3);
    }
    const check = card?.check;
    expect(check, 'template.check').toBeDefined();
    expect(check!.atLeast !== undefined || check!.atMost !== undefined).toBe(true);
    const nodeId = check!.metric.split('/')[0];
    expect(graph.nodes.map((n) => n.id)).toContain(nodeId);
  });
});

describe('meetsCheck', () => {
  it('applies both bounds and refuses missing or non-finite values', () => {
    expect(meetsCheck({ metric: 'a/b', atLeast: 1 }, 1)).toBe(true);
    expect(meetsCheck({ metric: 'a/b', atLeast: 1 }, 0.99)).toBe(false);
    expect(meetsCheck({ metric: 'a/b', atMost: 2, atLeast: 1 }, 2.5)).toBe(false);
    expect(meetsCheck({ metric: 'a/b', atMost: 2 }, undefined)).toBe(false);
    expect(meetsCheck({ metric: 'a/b', atMost: 2 }, Number.NaN)).toBe(false);
  });
});
