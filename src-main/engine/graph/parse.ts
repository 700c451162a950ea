/**
 * Reading a graph file: JSON text or a parsed value -> a well-formed GraphFile, or diagnostics saying why
 * not. Never throws on user input. Node types and parameters are checked later by the compiler.
 */
import { z } from 'zod';
import type { Diagnostic } from '../diagnostics.ts';
import { migrateFile } from './migrate.ts';
import { BACKEND_NAMES, DEFAULT_RUN_SETTINGS, GRAPH_FORMAT, type GraphFile } from './types.ts';

const MAX_TEXT_BYTES = 64 * 1024 * 1024;

// Bounded like node ids: a reference longer than any id can match nothing, and it would end up in messages.
const portRef = z.looseObject({ node: z.string().max(200), port: z.string().max(200) });

const graphSchema = z.looseObject({
  format: z.literal(GRAPH_FORMAT),
  version: z.number().int(),
  name: z.string().max(10_000),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  run: z.looseObject({
    iterations: z.number().int().min(1).max(1e9).default(DEFAULT_RUN_SETTINGS.iterations),
    checkpointEvery: z.number().int().min(0).max(1e9).default(DEFAULT_RUN_SETTINGS.checkpointEvery),
    backend: z.enum(BACKEND_NAMES).default(DEFAULT_RUN_SETTINGS.backend),
  }),
  nodes: z
    .array(
      z.looseObject({
        id: z.string().min(1).max(200),
        type: z.string().max(200),
        typeVersion: z.number().int().min(0).default(1),
        params: z.record(z.string(), z.unknown()).default({}),
        position: z.looseObject({ x: z.number(), y: z.number() }).default({ x: 0, y: 0 }),
        label: z.string().max(10_000).optional(),
      }),
    )
    .max(10_000),
  edges: z.array(z.looseObject({ id: z.string().optional(), from: portRef, to: portRef })).max(100_000),
});

export interface ParseResult {
  graph?: GraphFile;
  diagnostics: Diagnostic[];
  /** Set when an older file version was migrated on load. */
  migratedFrom?: number;
}

const fail = (message: string, code: string): ParseResult => ({
  diagnostics: [{ severity: 'error', message, code }],
});

export function parseGraphText(text: string): ParseResult {
  if (typeof text !== 'string') return fail('The graph file is not text.', 'not-text');
  if (text.length > MAX_TEXT_BYTES) return fail('The graph file is larger than 64 MiB.', 'too-large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(`The graph file is not valid JSON: ${(error as Error).message}`, 'invalid-json');
  }
  return parseGraphValue(value);
}

export function parseGraphValue(value: unknown): ParseResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('A graph file must hold a JSON object with nodes and edges.', 'not-an-object');
  }
  try {
    const migrated = migrateFile(value as Record<string, unknown>);
    if (!migrated.ok) return fail(migrated.message, 'version');
    const parsed = graphSchema.safeParse(migrated.file);
    if (!parsed.success) {
      return {
        diagnostics: parsed.error.issues.slice(0, 50).map((issue) => ({
          severity: 'error',
          code: 'malformed-graph',
          message: `${issue.path.join('.') || 'file'}: ${issue.message}`,
          ...nodeOf(migrated.file, issue.path),
        })),
      };
    }
    return { graph: parsed.data as GraphFile, diagnostics: [], migratedFrom: migrated.migratedFrom };
  } catch (error) {
    // Pathological input (e.g. nesting deep enough to exhaust the stack) still gets an answer.
    return fail(`The graph file could not be read: ${(error as Error).message}`, 'unreadable');
  }
}

/** Place a structural problem on its node when the path points into `nodes`. */
function nodeOf(file: Record<string, unknown>, path: PropertyKey[]): { nodeId?: string; param?: string } {
  if (path[0] !== 'nodes' || typeof path[1] !== 'number') return {};
  const node = (file.nodes as unknown[])[path[1]] as { id?: unknown } | undefined;
  const id = node && typeof node.id === 'string' && node.id.length <= 200 ? node.id : undefined;
  return id ? { nodeId: id, param: path.slice(2).join('.') || undefined } : {};
}
