import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MetricsRecord } from '../../src-main/engine/events.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export function loadTemplate(name: string): GraphFile {
  return JSON.parse(readFileSync(path.join(repoRoot, 'templates', `${name}.json`), 'utf8')) as GraphFile;
}

/** Metrics without wall-clock time: what determinism promises to repeat exactly. */
export const numbersOf = (records: MetricsRecord[]) =>
  records.map(({ iteration, envSteps, metrics }) => ({ iteration, envSteps, metrics }));

/** A graph node for test graphs built in code (type version 1, placed at x, y). */
export const graphNode = (id: string, type: string, params: Record<string, unknown>, x = 0, y = 0) => ({
  id,
  type,
  typeVersion: 1,
  params,
  position: { x, y },
});

/** A wire from an output port to an input port, for test graphs built in code. */
export const graphEdge = (from: string, fromPort: string, to: string, toPort: string) => ({
  from: { node: from, port: fromPort },
  to: { node: to, port: toPort },
});
