/**
 * Every template trained at its full length on the WebAssembly backend, its final figure set against the
 * promise on its card (`template.check`), with the wall-clock time. Templates that need an outside service
 * (`template.requires`) are listed, not run.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createRegistry } from '../../nodes/index.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, repoRoot } from '../helpers/graphs.ts';
import { fmt, type Row, type Section } from './table.ts';

export interface TemplateCheck {
  metric: string;
  atLeast?: number;
  atMost?: number;
}

interface Card {
  title: string;
  duration?: string;
  check?: TemplateCheck;
  requires?: string;
}

export function templateNames(): string[] {
  return readdirSync(path.join(repoRoot, 'templates'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
}

export function meetsCheck(check: TemplateCheck, value: number | undefined): boolean {
  if (value === undefined || !Number.isFinite(value)) return false;
  if (check.atLeast !== undefined && value < check.atLeast) return false;
  if (check.atMost !== undefined && value > check.atMost) return false;
  return true;
}

const promise = (c: TemplateCheck) =>
  [c.atLeast !== undefined ? `>= ${c.atLeast}` : '', c.atMost !== undefined ? `<= ${c.atMost}` : '']
    .filter(Boolean)
    .join(' and ');

export async function benchTemplates(names = templateNames()): Promise<Section> {
  const rows: Row[] = [];
  for (const name of names) {
    const graph = loadTemplate(name) as unknown as { template?: Card };
    const card = graph.template;
    if (!card?.check) {
      rows.push([name, 'no check on the card', '', '', '', '']);
      continue;
    }
    if (card.requires) {
      rows.push([name, `needs ${card.requires}`, promise(card.check), 'not run', '', '']);
      continue;
    }
    console.error(`bench: template ${name}...`);
    const started = performance.now();
    const result = await executeRun({
      graph,
      registry: createRegistry(),
      backend: 'wasm',
      onPauseRequest: 'stop',
    });
    const seconds = (performance.now() - started) / 1000;
    const value = result.metrics.at(-1)?.metrics[card.check.metric];
    rows.push([
      name,
      `${card.check.metric} = ${fmt(value, 3)}`,
      promise(card.check),
      result.status !== 'finished'
        ? `${result.status}: ${result.error?.message ?? ''}`
        : meetsCheck(card.check, value)
          ? 'met'
          : 'NOT met',
      fmt(result.envSteps),
      `${fmt(seconds, 1)} s (card: ${card.duration ?? 'n/a'})`,
    ]);
  }
  return {
    title: 'Templates at full length (WebAssembly)',
    header: ['template', 'final figure', 'card promises', 'result', 'env steps', 'wall-clock'],
    rows,
  };
}
