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
