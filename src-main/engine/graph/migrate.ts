/**
 * Graph file migrations. `fileMigrations[v]` turns a file of format version v into v+1. Older files are
 * always migrated, never rejected; a file newer than this app is refused with a clear message.
 */
import { GRAPH_FORMAT, GRAPH_VERSION } from './types.ts';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * v0 (the prototype's files): `{version: 0, title, randomSeed, settings, nodes: [{id, kind, config, x, y}],
 * links: [{source: "node:port", target: "node:port"}]}`.
 */
function v0ToV1(file: Json): Json {
  const { title, randomSeed, settings, nodes, links, ...rest } = file;
  const splitRef = (ref: unknown) => {
    const text = typeof ref === 'string' ? ref : '';
    const cut = text.lastIndexOf(':');
    return cut < 0 ? { node: text, port: '' } : { node: text.slice(0, cut), port: text.slice(cut + 1) };
  };
  return {
    ...rest,
    format: GRAPH_FORMAT,
    version: 1,
    name: typeof title === 'string' ? title : 'Untitled graph',
    seed: randomSeed ?? 1,
    run: isObject(settings) ? settings : {},
    nodes: (Array.isArray(nodes) ? nodes : []).map((n) => {
      if (!isObject(n)) return n;
      const { kind, config, x, y, ...nodeRest } = n;
      return {
        ...nodeRest,
        type: kind,
        typeVersion: 1,
        params: isObject(config) ? config : {},
        position: { x: typeof x === 'number' ? x : 0, y: typeof y === 'number' ? y : 0 },
      };
    }),
    edges: (Array.isArray(links) ? links : []).map((l) => {
      if (!isObject(l)) return l;
      const { source, target, ...linkRest } = l;
      return { ...linkRest, from: splitRef(source), to: splitRef(target) };
    }),
  };
}

const fileMigrations: Record<number, (file: Json) => Json> = { 0: v0ToV1 };

export type MigrationResult =
  | { ok: true; file: Json; migratedFrom?: number }
  | { ok: false; message: string };

export function migrateFile(file: Json): MigrationResult {
  const raw = file.version ?? (file.format === undefined && 'links' in file ? 0 : undefined);
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0) {
    return {
      ok: false,
      message: `'version' must be a whole number (this app writes version ${GRAPH_VERSION})`,
    };
  }
  if (raw > GRAPH_VERSION) {
    return {
      ok: false,
      message: `This graph was saved by a newer version of Agent RL Studio (file version ${raw}; this app reads up to ${GRAPH_VERSION}). Update the app to open it.`,
    };
  }
  let current = file;
  for (let v = raw; v < GRAPH_VERSION; v++) current = fileMigrations[v](current);
  return { ok: true, file: current, migratedFrom: raw < GRAPH_VERSION ? raw : undefined };
}
