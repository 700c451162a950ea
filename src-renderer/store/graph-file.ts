/**
 * Reading a graph file the user picked: the engine's own parser (the same one the main process and CLI
 * use), so a file refused here is refused everywhere, with the same reason. Never throws on user input.
 */
import type { GraphFile } from '../../src-main/api/studio-api.ts';
import { formatDiagnostic } from '../../src-main/engine/diagnostics.ts';
import { parseGraphText } from '../../src-main/engine/graph/parse.ts';

export type ReadGraphResult =
  | { ok: true; graph: GraphFile; migratedFrom?: number }
  | { ok: false; reason: string };

export function readGraphText(text: string, fileName: string): ReadGraphResult {
  const parsed = parseGraphText(text);
  if (!parsed.graph) {
    const reasons = parsed.diagnostics.slice(0, 3).map(formatDiagnostic).join('; ');
    return { ok: false, reason: `${fileName} cannot be opened: ${reasons || 'it is not a graph file'}.` };
  }
  return { ok: true, graph: parsed.graph, migratedFrom: parsed.migratedFrom };
}

/** `My graph!` -> `my-graph.json`. */
export function fileNameFor(graph: GraphFile): string {
  const base =
    graph.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'graph';
  return `${base}.json`;
}
