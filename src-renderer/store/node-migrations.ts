/**
 * Node-type version migration on load: nodes saved with an older version of their type get their
 * parameters upgraded (by the node types' own `migrations`, which run in the main process) and the user
 * is told which nodes changed.
 */
import type { CatalogNode, GraphFile } from '../../src-main/api/studio-api.ts';

export interface NodeUpgrade {
  nodeId: string;
  type: string;
  from: number;
  to: number;
}

/** Nodes whose saved type version is older than the catalog's. */
export function outdatedNodes(graph: GraphFile, types: ReadonlyMap<string, CatalogNode>): NodeUpgrade[] {
  const found: NodeUpgrade[] = [];
  for (const node of graph.nodes) {
    const type = types.get(node.type);
    if (type && node.typeVersion < type.version)
      found.push({ nodeId: node.id, type: node.type, from: node.typeVersion, to: type.version });
  }
  return found;
}

/** Upgrades the parameters of the given graph's outdated nodes; returns the upgraded graph. */
export type ParamUpgrader = (graph: GraphFile) => Promise<GraphFile>;

export interface MigrationOutcome {
  graph: GraphFile;
  upgraded: NodeUpgrade[];
  /** Nodes that could not be upgraded (they keep their old version; the compiler explains why). */
  failed: NodeUpgrade[];
  /** What to tell the user, when anything was outdated. */
  notice?: string;
}

export async function migrateNodeTypes(
  graph: GraphFile,
  types: ReadonlyMap<string, CatalogNode>,
  upgrade: ParamUpgrader,
): Promise<MigrationOutcome> {
  const outdated = outdatedNodes(graph, types);
  if (outdated.length === 0) return { graph, upgraded: [], failed: [] };
  const next = await upgrade(graph);
  const versionOf = new Map(next.nodes.map((n) => [n.id, n.typeVersion]));
  const upgraded = outdated.filter((u) => versionOf.get(u.nodeId) === u.to);
  const failed = outdated.filter((u) => versionOf.get(u.nodeId) !== u.to);
  const describe = (list: NodeUpgrade[]) =>
    list.map((u) => `${u.nodeId} (${u.type} v${u.from} → v${u.to})`).join(', ');
  const parts: string[] = [];
  if (upgraded.length > 0)
    parts.push(
      `${upgraded.length} node${upgraded.length === 1 ? ' was' : 's were'} upgraded to the newer version of ${upgraded.length === 1 ? 'its' : 'their'} type: ${describe(upgraded)}. Check ${upgraded.length === 1 ? 'its' : 'their'} parameters; Undo restores the saved version.`,
    );
  if (failed.length > 0)
    parts.push(
      `${failed.length} node${failed.length === 1 ? '' : 's'} could not be upgraded: ${describe(failed)}.`,
    );
  return { graph: next, upgraded, failed, notice: parts.join(' ') };
}
