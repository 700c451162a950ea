/**
 * Auto-layout with elkjs (layered, left to right, port-aware: each handle is an ELK port on the west or
 * east side in its on-screen order, so wires leave and enter where they are drawn).
 */
import type { CatalogNode, GraphFile } from '../../src-main/api/studio-api.ts';
import type { XY } from '../store/graph-model.ts';

export interface NodeBox {
  width: number;
  height: number;
}

export async function layoutGraph(
  graph: GraphFile,
  types: ReadonlyMap<string, CatalogNode>,
  sizes: ReadonlyMap<string, NodeBox>,
): Promise<Map<string, XY>> {
  // Loaded on first use: ELK is large and most sessions never lay out.
  const { default: ELK } = await import('elkjs/lib/elk.bundled.js');
  const elk = new ELK();
  const portId = (node: string, side: 'in' | 'out', port: string) => `${node}::${side}::${port}`;
  const children = graph.nodes.map((node) => {
    const type = types.get(node.type);
    const size = sizes.get(node.id) ?? { width: 220, height: 120 };
    const inputs = type?.inputs ?? [];
    const outputs = type?.outputs ?? [];
    return {
      id: node.id,
      width: size.width,
      height: size.height,
      layoutOptions: { 'elk.portConstraints': 'FIXED_ORDER' },
      ports: [
        ...inputs.map((p, i) => ({
          id: portId(node.id, 'in', p.name),
          width: 8,
          height: 8,
          layoutOptions: { 'elk.port.side': 'WEST', 'elk.port.index': String(inputs.length - 1 - i) },
        })),
        ...outputs.map((p, i) => ({
          id: portId(node.id, 'out', p.name),
          width: 8,
          height: 8,
          layoutOptions: { 'elk.port.side': 'EAST', 'elk.port.index': String(i) },
        })),
      ],
    };
  });
  const known = new Set(children.flatMap((c) => c.ports.map((p) => p.id)));
  const edges = graph.edges
    .map((e, i) => ({
      id: `e${i}`,
      sources: [portId(e.from.node, 'out', e.from.port)],
      targets: [portId(e.to.node, 'in', e.to.port)],
    }))
    .filter((e) => known.has(e.sources[0]) && known.has(e.targets[0]));
  const result = await elk.layout({
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.layered.spacing.nodeNodeBetweenLayers': '90',
      'elk.spacing.nodeNode': '40',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.layered.crossingMinimization.strategy': 'LAYER_SWEEP',
    },
    children,
    edges,
  });
  const positions = new Map<string, XY>();
  for (const child of result.children ?? []) {
    positions.set(child.id, { x: Math.round(child.x ?? 0), y: Math.round(child.y ?? 0) });
  }
  return positions;
}
