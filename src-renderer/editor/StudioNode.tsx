/**
 * A node on the canvas: title in its family's colour, typed handles coloured by port type, key
 * parameters and a status badge (ok / warning / error / running). Memoised: it re-renders only when its
 * own data, selection or the wire being dragged changes.
 */
import { Handle, type Node, type NodeProps, Position, useConnection } from '@xyflow/react';
import { memo, useContext } from 'react';
import type { CatalogNode, Diagnostic, GraphFile } from '../../src-main/api/studio-api.ts';
import { wireMismatch } from '../../src-main/engine/ports.ts';
import { LiveNodeStateContext } from '../live-state.ts';
import { EditorLookupsContext, portSpec } from './editor-context.ts';
import { familyColor } from './families.ts';

export interface StudioNodeData extends Record<string, unknown> {
  node: GraphFile['nodes'][number];
  type: CatalogNode | undefined;
  diagnostics: readonly Diagnostic[];
}

export type StudioFlowNode = Node<StudioNodeData, 'studio'>;

function formatParam(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(formatParam).join(', ')}]`;
  if (typeof value === 'number') {
    if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
    return Math.abs(value) < 0.001 ? value.toExponential(1) : String(Number(value.toPrecision(4)));
  }
  if (typeof value === 'object' && value !== null) return '{…}';
  return String(value);
}

interface DraggedWire {
  nodeId: string;
  handleId: string | null;
  side: 'source' | 'target';
}

/** The wire being dragged, as primitives (compared shallowly, so nodes re-render only at its start/end). */
const draggedWire = (c: {
  inProgress: boolean;
  fromNode?: { id: string } | null;
  fromHandle?: { id?: string | null; type: 'source' | 'target' } | null;
}): DraggedWire | { nodeId: null } =>
  c.inProgress && c.fromNode && c.fromHandle
    ? { nodeId: c.fromNode.id, handleId: c.fromHandle.id ?? null, side: c.fromHandle.type }
    : { nodeId: null };

function StudioNodeView({ id, data, selected }: NodeProps<StudioFlowNode>) {
  const { node, type, diagnostics } = data;
  const lookups = useContext(EditorLookupsContext);
  const live = useContext(LiveNodeStateContext).get(id);
  const wire = useConnection(draggedWire);

  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings = diagnostics.filter((d) => d.severity === 'warning');
  const status = live?.status ?? (errors.length ? 'error' : warnings.length ? 'warning' : 'ok');
  const statusText = live?.message ?? errors[0]?.message ?? warnings[0]?.message ?? 'no problems found';

  /** While a wire is dragged: does this handle fit its other end (the compiler's own check)? */
  const fitOf = (side: 'source' | 'target', name: string): 'compatible' | 'incompatible' | '' => {
    if (wire.nodeId === null) return '';
    const dragged = wire as DraggedWire;
    if (dragged.side === side)
      return dragged.nodeId === id && dragged.handleId === name ? '' : 'incompatible';
    if (dragged.nodeId === id) return 'incompatible';
    const other = portSpec(lookups.typeOfNode(dragged.nodeId), dragged.side, dragged.handleId ?? '');
    const mine = portSpec(type, side, name);
    if (!other || !mine) return 'incompatible';
    const reason = side === 'target' ? wireMismatch(other, mine) : wireMismatch(mine, other);
    return reason ? 'incompatible' : 'compatible';
  };
  const portColor = (portType: string) => lookups.portTypes[portType]?.color ?? '#868e96';
  const portError = (name: string) => diagnostics.some((d) => d.port === name && d.severity === 'error');

  const keyParams = type?.keyParams ?? [];
  return (
    <div
      className={`studio-node status-${status}${selected ? ' selected' : ''}${type ? '' : ' unknown-type'}`}
      style={{ '--family-color': familyColor(type?.family) } as React.CSSProperties}
      title={type?.summary}
    >
      <header className="studio-node-header">
        <span className="studio-node-title">{node.label ?? node.id}</span>
        <span className={`badge badge-${status}`} title={statusText}>
          {status === 'ok' ? 'ok' : status}
        </span>
      </header>
      <div className="studio-node-type">
        {type ? type.title : `unknown type ${node.type}`} <span className="studio-node-id">#{node.id}</span>
      </div>
      <div className="studio-node-ports">
        <div className="ports-in">
          {(type?.inputs ?? []).map((port) => (
            <div key={port.name} className={`port port-in${portError(port.name) ? ' port-error' : ''}`}>
              <Handle
                type="target"
                position={Position.Left}
                id={port.name}
                className={`handle ${fitOf('target', port.name)}`}
                style={{ '--port-color': portColor(port.type) } as React.CSSProperties}
                title={`${port.name}: ${port.type}${port.multiple ? ' (several wires)' : ''}${port.required === false ? ' (optional)' : ''}`}
              />
              <span>{port.title ?? port.name}</span>
            </div>
          ))}
        </div>
        <div className="ports-out">
          {(type?.outputs ?? []).map((port) => (
            <div key={port.name} className="port port-out">
              <span>{port.title ?? port.name}</span>
              <Handle
                type="source"
                position={Position.Right}
                id={port.name}
                className={`handle ${fitOf('source', port.name)}`}
                style={{ '--port-color': portColor(port.type) } as React.CSSProperties}
                title={`${port.name}: ${port.type}`}
              />
            </div>
          ))}
        </div>
      </div>
      {keyParams.length > 0 && (
        <dl className="studio-node-params">
          {keyParams.map((name) => (
            <div key={name}>
              <dt>{name}</dt>
              <dd>{formatParam(node.params[name] ?? type?.defaults[name])}</dd>
            </div>
          ))}
        </dl>
      )}
      {live?.headline && (
        <div className="studio-node-headline">
          {live.headline.name}: <strong>{formatParam(live.headline.value)}</strong>
        </div>
      )}
      {status !== 'ok' && status !== 'running' && <div className="studio-node-problem">{statusText}</div>}
    </div>
  );
}

export const StudioNode = memo(StudioNodeView);
