/**
 * The editor: palette, canvas (React Flow) and inspector around one graph. Every change becomes a new
 * GraphFile passed to `onEdit` (which records it for undo and autosaves it); selection, viewport and
 * in-progress drags stay local to the canvas.
 */
import {
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  BackgroundVariant,
  type Connection,
  ConnectionMode,
  Controls,
  type Edge,
  type EdgeChange,
  type FinalConnectionState,
  type IsValidConnection,
  MiniMap,
  type NodeChange,
  ReactFlow,
  useReactFlow,
} from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { Catalog, CatalogNode, Diagnostic, GraphFile } from '../../src-main/api/studio-api.ts';
import { onFocusNode } from '../live-state.ts';
import {
  addFrame,
  addNode,
  type ClipboardContent,
  catalogIndex,
  checkWire,
  connect,
  copySelection,
  edgeId,
  framesOf,
  isClipboardContent,
  moveNodes,
  nodesInFrame,
  type PortEnd,
  paste,
  removeElements,
  setLabel,
  setParam,
  updateFrame,
  type XY,
} from '../store/graph-model.ts';
import { type EditorLookups, EditorLookupsContext } from './editor-context.ts';
import { FrameNode } from './FrameNode.tsx';
import { familyColor } from './families.ts';
import { buildFlowEdges, buildFlowNodes, diagnosticsByNode, type FlowNode } from './flow-elements.ts';
import { Inspector } from './Inspector.tsx';
import { layoutGraph } from './layout.ts';
import { PALETTE_MIME, Palette } from './Palette.tsx';
import { QuickAdd } from './QuickAdd.tsx';
import { StudioNode } from './StudioNode.tsx';
import { SHORTCUTS } from './shortcuts.ts';

const NODE_TYPES = { studio: StudioNode, frame: FrameNode };
const SNAP_GRID: [number, number] = [10, 10];
const CLIPBOARD_KEY = 'agent-rl-studio-clipboard';
const PASTE_OFFSET = 40;
const LARGE_GRAPH_NODES = 150;
/** Diagnostics listed in the graph summary; the rest are on their nodes. */
const SUMMARY_DIAGNOSTICS = 50;
const SMALL_FIT = { padding: 0.15 };
const LARGE_FIT = { padding: 0.15, minZoom: 0.3 };

/** The clipboard lives in localStorage so that it also works between graphs and tabs. */
function readClipboard(): ClipboardContent | null {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(CLIPBOARD_KEY) ?? 'null');
    return isClipboardContent(value) ? value : null;
  } catch {
    return null;
  }
}

const isTypingTarget = (target: EventTarget | null): boolean =>
  target instanceof HTMLElement &&
  (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));

const endsOf = (c: Connection | Edge): { from: PortEnd; to: PortEnd } => ({
  from: { node: c.source, port: c.sourceHandle ?? '' },
  to: { node: c.target, port: c.targetHandle ?? '' },
});

export interface GraphEditorProps {
  graph: GraphFile;
  catalog: Catalog | null;
  diagnostics: readonly Diagnostic[];
  onEdit(next: GraphFile, mergeKey?: string): void;
  onUndo(): void;
  onRedo(): void;
  canUndo: boolean;
  canRedo: boolean;
  /** Ctrl+S: keep the present as a named version. */
  onKeepVersion(): void;
  /** A refused wire, a failed layout...: shown to the user. */
  onProblem(message: string): void;
}

export function GraphEditor(props: GraphEditorProps) {
  const { graph, catalog, diagnostics, onEdit, onUndo, onRedo, canUndo, canRedo, onKeepVersion, onProblem } =
    props;
  const flow = useReactFlow<FlowNode, Edge>();
  const types = useMemo(() => (catalog ? catalogIndex(catalog) : new Map<string, CatalogNode>()), [catalog]);
  const typeList = useMemo(() => catalog?.nodes ?? [], [catalog]);

  const graphRef = useRef(graph);
  graphRef.current = graph;
  const diagnosticsRef = useRef<ReadonlyMap<string, readonly Diagnostic[]>>(new Map());
  const byNode = useMemo(() => {
    const next = diagnosticsByNode(diagnostics, diagnosticsRef.current);
    diagnosticsRef.current = next;
    return next;
  }, [diagnostics]);
  // Built at once on mount (no empty first pass), then kept in step with the graph by the effect below.
  const [nodes, setNodes] = useState<FlowNode[]>(() => buildFlowNodes(graph, types, byNode, []));
  const [edges, setEdges] = useState<Edge[]>(() =>
    buildFlowEdges(graph, types, catalog?.portTypes ?? {}, diagnostics, []),
  );
  const nodesRef = useRef(nodes);
  nodesRef.current = nodes;
  /** Ids to select when the next graph arrives (after paste, add, duplicate). */
  const pendingSelection = useRef<Set<string> | null>(null);

  useEffect(() => {
    const select = pendingSelection.current ?? undefined;
    pendingSelection.current = null;
    setNodes((previous) => buildFlowNodes(graph, types, byNode, previous, select));
    setEdges((previous) => {
      const built = buildFlowEdges(graph, types, catalog?.portTypes ?? {}, diagnostics, previous);
      return select ? built.map((e) => (e.selected ? { ...e, selected: false } : e)) : built;
    });
  }, [graph, types, byNode, catalog, diagnostics]);

  const selectedNodeIds = useMemo(
    () => nodes.filter((n) => n.selected && n.type === 'studio').map((n) => n.id),
    [nodes],
  );
  const selectedFrameIds = useMemo(
    () => nodes.filter((n) => n.selected && n.type === 'frame').map((n) => n.id),
    [nodes],
  );
  const selectedEdgeIds = useMemo(() => edges.filter((e) => e.selected).map((e) => e.id), [edges]);

  const edit = useCallback(
    (next: GraphFile, mergeKey?: string, select?: Iterable<string>) => {
      if (next === graphRef.current) return;
      if (select) pendingSelection.current = new Set(select);
      graphRef.current = next;
      onEdit(next, mergeKey);
    },
    [onEdit],
  );

  const lookups = useMemo<EditorLookups>(
    () => ({
      typeOfNode: (id) => {
        const node = graphRef.current.nodes.find((n) => n.id === id);
        return node ? types.get(node.type) : undefined;
      },
      portTypes: catalog?.portTypes ?? {},
      renameFrame: (id, title) => edit(updateFrame(graphRef.current, id, { title })),
    }),
    [types, catalog, edit],
  );

  // --- moving, resizing, selecting ---

  /** Frame being dragged -> the nodes that move with it. */
  const frameMembers = useRef(new Map<string, string[]>());

  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) => {
      const kept = changes.filter((c) => c.type !== 'remove');
      let next = applyNodeChanges(kept, nodesRef.current);
      const moved = new Map<string, XY>();
      const finished = new Set<string>();
      for (const change of kept) {
        if (change.type === 'position' && change.position) {
          // A frame carries its members along.
          const members = frameMembers.current.get(change.id);
          const before = nodesRef.current.find((n) => n.id === change.id);
          if (members && before) {
            const dx = change.position.x - before.position.x;
            const dy = change.position.y - before.position.y;
            if (dx !== 0 || dy !== 0) {
              const set = new Set(members);
              next = next.map((n) =>
                set.has(n.id) ? { ...n, position: { x: n.position.x + dx, y: n.position.y + dy } } : n,
              );
            }
          }
          if (!change.dragging) finished.add(change.id);
        }
        if (change.type === 'dimensions' && change.resizing === false) finished.add(change.id);
      }
      nodesRef.current = next;
      setNodes(next);
      if (finished.size === 0) return;
      // A drag, an arrow-key nudge or a resize ended: record it in the graph (one undo step).
      let graphNext = graphRef.current;
      for (const id of finished) {
        const members = frameMembers.current.get(id) ?? [];
        for (const moving of [id, ...members]) {
          const node = next.find((n) => n.id === moving);
          if (node) moved.set(moving, { x: Math.round(node.position.x), y: Math.round(node.position.y) });
        }
        frameMembers.current.delete(id);
        const frame = next.find((n) => n.id === id && n.type === 'frame');
        const size = frame?.measured ?? (frame ? { width: frame.width, height: frame.height } : undefined);
        if (frame && size?.width && size.height) {
          const stored = framesOf(graphNext).find((f) => f.id === id);
          if (stored && (stored.size.width !== size.width || stored.size.height !== size.height))
            graphNext = updateFrame(graphNext, id, {
              size: { width: Math.round(size.width), height: Math.round(size.height) },
            });
        }
      }
      graphNext = moveNodes(graphNext, moved);
      edit(graphNext, `move:${[...finished].sort().join(',')}`);
    },
    [edit],
  );

  const onNodeDragStart = useCallback((_event: unknown, _node: FlowNode, dragged: FlowNode[]) => {
    frameMembers.current.clear();
    const draggedIds = new Set(dragged.map((n) => n.id));
    for (const n of dragged) {
      if (n.type !== 'frame') continue;
      const frame = framesOf(graphRef.current).find((f) => f.id === n.id);
      if (frame)
        frameMembers.current.set(
          n.id,
          nodesInFrame(graphRef.current, frame).filter((id) => !draggedIds.has(id)),
        );
    }
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    setEdges((current) =>
      applyEdgeChanges(
        changes.filter((c) => c.type !== 'remove'),
        current,
      ),
    );
  }, []);

  // --- wires ---

  const isValidConnection = useCallback<IsValidConnection>(
    (c) => {
      const { from, to } = endsOf(c as Connection);
      return checkWire(graphRef.current, types, from, to) === null;
    },
    [types],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      const { from, to } = endsOf(c);
      const result = connect(graphRef.current, types, from, to);
      if (result.ok) edit(result.graph);
      else onProblem(`Wire refused: ${result.reason}.`);
    },
    [types, edit, onProblem],
  );

  const onConnectEnd = useCallback(
    (_event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (!state.toHandle || state.isValid || !state.fromHandle) return;
      // Dropped on a handle that does not fit: say why (the compiler's words).
      const a = { node: state.fromHandle.nodeId, port: state.fromHandle.id ?? '' };
      const b = { node: state.toHandle.nodeId, port: state.toHandle.id ?? '' };
      const [from, to] = state.fromHandle.type === 'source' ? [a, b] : [b, a];
      const sameSide = state.fromHandle.type === state.toHandle.type;
      const reason = sameSide
        ? `an ${state.fromHandle.type === 'source' ? 'output' : 'input'} cannot be wired to another ${state.fromHandle.type === 'source' ? 'output' : 'input'}`
        : checkWire(graphRef.current, types, from, to);
      if (reason) onProblem(`Wire refused: ${reason}.`);
    },
    [types, onProblem],
  );

  // --- adding nodes ---

  const addAt = useCallback(
    (type: CatalogNode, position: XY) => {
      const snapped = { x: Math.round(position.x / 10) * 10, y: Math.round(position.y / 10) * 10 };
      const result = addNode(graphRef.current, type, snapped);
      edit(result.graph, undefined, [result.nodeId]);
    },
    [edit],
  );

  const wrapper = useRef<HTMLDivElement>(null);
  const viewCenter = useCallback((): XY => {
    const box = wrapper.current?.getBoundingClientRect();
    if (!box) return { x: 0, y: 0 };
    return flow.screenToFlowPosition({ x: box.left + box.width / 2 - 110, y: box.top + box.height / 2 - 60 });
  }, [flow]);

  const [quickAdd, setQuickAdd] = useState<{ screen: XY; flow: XY } | null>(null);

  const onDrop = useCallback(
    (event: React.DragEvent) => {
      const typeName = event.dataTransfer.getData(PALETTE_MIME);
      if (!typeName) return;
      event.preventDefault();
      const type = types.get(typeName);
      if (type) addAt(type, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [types, addAt, flow],
  );

  const onDoubleClick = useCallback(
    (event: React.MouseEvent) => {
      if (!(event.target instanceof Element) || !event.target.classList.contains('react-flow__pane')) return;
      const box = wrapper.current!.getBoundingClientRect();
      setQuickAdd({
        screen: { x: event.clientX - box.left, y: event.clientY - box.top },
        flow: flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }),
      });
    },
    [flow],
  );

  // --- commands ---

  const measuredSizes = useCallback(() => {
    const sizes = new Map<string, { width: number; height: number }>();
    for (const n of flow.getNodes()) {
      if (n.measured?.width && n.measured.height)
        sizes.set(n.id, { width: n.measured.width, height: n.measured.height });
    }
    return sizes;
  }, [flow]);

  const deleteSelection = useCallback(() => {
    edit(
      removeElements(graphRef.current, {
        nodes: selectedNodeIds,
        edges: selectedEdgeIds,
        frames: selectedFrameIds,
      }),
    );
  }, [edit, selectedNodeIds, selectedEdgeIds, selectedFrameIds]);

  const copy = useCallback(() => {
    if (selectedNodeIds.length + selectedFrameIds.length === 0) return false;
    localStorage.setItem(
      CLIPBOARD_KEY,
      JSON.stringify(copySelection(graphRef.current, selectedNodeIds, selectedFrameIds)),
    );
    return true;
  }, [selectedNodeIds, selectedFrameIds]);

  const pasteClipboard = useCallback(
    (content: ClipboardContent | null, offset?: XY) => {
      if (!content || content.nodes.length + content.frames.length === 0) return;
      let shift = offset;
      if (!shift) {
        // Paste near the middle of the view, keeping the copied arrangement.
        const xs = [...content.nodes.map((n) => n.position.x), ...content.frames.map((f) => f.position.x)];
        const ys = [...content.nodes.map((n) => n.position.y), ...content.frames.map((f) => f.position.y)];
        const center = viewCenter();
        const onCanvas = content.nodes.some((n) =>
          graphRef.current.nodes.some(
            (m) => m.id === n.id && m.position.x === n.position.x && m.position.y === n.position.y,
          ),
        );
        shift = onCanvas
          ? { x: PASTE_OFFSET, y: PASTE_OFFSET }
          : { x: Math.round(center.x - Math.min(...xs)), y: Math.round(center.y - Math.min(...ys)) };
      }
      const result = paste(graphRef.current, content, shift);
      edit(result.graph, undefined, [...result.nodeIds, ...result.frameIds]);
    },
    [edit, viewCenter],
  );

  const duplicate = useCallback(() => {
    if (selectedNodeIds.length + selectedFrameIds.length === 0) return;
    pasteClipboard(copySelection(graphRef.current, selectedNodeIds, selectedFrameIds), {
      x: PASTE_OFFSET,
      y: PASTE_OFFSET,
    });
  }, [selectedNodeIds, selectedFrameIds, pasteClipboard]);

  const group = useCallback(() => {
    const result = addFrame(graphRef.current, selectedNodeIds, measuredSizes());
    edit(result.graph, undefined, [result.frameId]);
  }, [edit, selectedNodeIds, measuredSizes]);

  const [layingOut, setLayingOut] = useState(false);
  const autoLayout = useCallback(async () => {
    setLayingOut(true);
    try {
      const positions = await layoutGraph(graphRef.current, types, measuredSizes());
      edit(moveNodes(graphRef.current, positions));
      requestAnimationFrame(() => flow.fitView({ duration: 200, padding: 0.15 }));
    } catch (error) {
      onProblem(`Auto-layout failed: ${(error as Error).message ?? error}`);
    } finally {
      setLayingOut(false);
    }
  }, [types, measuredSizes, edit, flow, onProblem]);

  const selectAll = useCallback(() => {
    setNodes((current) => current.map((n) => (n.selected ? n : { ...n, selected: true })));
  }, []);

  const [helpOpen, setHelpOpen] = useState(false);
  const helpRef = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = helpRef.current;
    if (helpOpen && dialog && !dialog.open) dialog.showModal();
    if (!helpOpen && dialog?.open) dialog.close();
  }, [helpOpen]);

  // Keyboard shortcuts, everywhere but in text fields (which keep their own undo and copy).
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (isTypingTarget(event.target) || document.querySelector('dialog[open]')) return;
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      let handled = true;
      if (mod && key === 'z' && !event.shiftKey) onUndo();
      else if (mod && ((key === 'z' && event.shiftKey) || key === 'y')) onRedo();
      else if (mod && key === 'c') handled = copy();
      else if (mod && key === 'x') {
        if (copy()) deleteSelection();
      } else if (mod && key === 'v') pasteClipboard(readClipboard());
      else if (mod && key === 'd') duplicate();
      else if (mod && key === 'a') selectAll();
      else if (mod && key === 'g') group();
      else if (mod && key === 's') onKeepVersion();
      else if (!mod && (event.key === 'Delete' || event.key === 'Backspace')) deleteSelection();
      else if (!mod && event.shiftKey && key === 'a') {
        const box = wrapper.current?.getBoundingClientRect();
        if (box) setQuickAdd({ screen: { x: box.width / 2 - 120, y: box.height / 3 }, flow: viewCenter() });
      } else if (!mod && event.shiftKey && key === 'l') void autoLayout();
      else if (!mod && event.shiftKey && key === 'f') flow.fitView({ duration: 200, padding: 0.15 });
      else if (event.key === '?') setHelpOpen(true);
      else handled = false;
      if (handled) event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [
    onUndo,
    onRedo,
    copy,
    deleteSelection,
    pasteClipboard,
    duplicate,
    selectAll,
    group,
    onKeepVersion,
    autoLayout,
    flow,
    viewCenter,
  ]);

  // A finding or log line clicked in the run panels: select, centre and inspect that node.
  const [focusField, setFocusField] = useState<string | undefined>();
  useEffect(
    () =>
      onFocusNode((nodeId, field) => {
        const node = flow.getNode(nodeId);
        if (!node) return;
        setNodes((current) =>
          current.map((n) => (n.selected === (n.id === nodeId) ? n : { ...n, selected: n.id === nodeId })),
        );
        const width = node.measured?.width ?? 220;
        const height = node.measured?.height ?? 120;
        flow.setCenter(node.position.x + width / 2, node.position.y + height / 2, {
          duration: 300,
          zoom: Math.max(flow.getZoom(), 1),
        });
        setFocusField(field);
      }),
    [flow],
  );
  useEffect(() => {
    if (!focusField) return;
    const id = `param-${focusField.replace(/\./g, '-')}`;
    requestAnimationFrame(() => document.getElementById(id)?.focus());
    setFocusField(undefined);
  }, [focusField]);

  const inspected =
    selectedNodeIds.length === 1 ? graph.nodes.find((n) => n.id === selectedNodeIds[0]) : undefined;
  const errorCount = diagnostics.filter((d) => d.severity === 'error').length;
  const warningCount = diagnostics.length - errorCount;

  return (
    <EditorLookupsContext.Provider value={lookups}>
      <div className="editor">
        <Palette types={typeList} onAdd={(type) => addAt(type, viewCenter())} />
        <div className="canvas-column">
          <div className="editor-toolbar" role="toolbar" aria-label="Editing">
            <button type="button" onClick={onUndo} disabled={!canUndo} aria-keyshortcuts="Control+Z">
              Undo
            </button>
            <button type="button" onClick={onRedo} disabled={!canRedo} aria-keyshortcuts="Shift+Control+Z">
              Redo
            </button>
            <button
              type="button"
              onClick={duplicate}
              disabled={selectedNodeIds.length + selectedFrameIds.length === 0}
            >
              Duplicate
            </button>
            <button
              type="button"
              onClick={deleteSelection}
              disabled={selectedNodeIds.length + selectedEdgeIds.length + selectedFrameIds.length === 0}
            >
              Delete
            </button>
            <button type="button" onClick={group} disabled={selectedNodeIds.length === 0}>
              Frame selection
            </button>
            <button
              type="button"
              onClick={() => void autoLayout()}
              disabled={layingOut || graph.nodes.length === 0}
            >
              {layingOut ? 'Laying out…' : 'Auto-layout'}
            </button>
            <button type="button" onClick={() => setHelpOpen(true)} aria-label="Keyboard shortcuts">
              ?
            </button>
            <output className="diagnostic-summary" aria-label="diagnostic summary">
              {errorCount === 0 && warningCount === 0
                ? 'no problems'
                : `${errorCount} error${errorCount === 1 ? '' : 's'}, ${warningCount} warning${warningCount === 1 ? '' : 's'}`}
            </output>
          </div>
          {/* biome-ignore lint/a11y/noStaticElementInteractions: drop target and double-click surface of the canvas; keyboard users add nodes with Shift+A or the palette. */}
          <div
            className="canvas"
            ref={wrapper}
            onDragOver={(e) => e.preventDefault()}
            onDrop={onDrop}
            onDoubleClick={onDoubleClick}
          >
            <ReactFlow<FlowNode, Edge>
              aria-label="Graph canvas"
              nodes={nodes}
              edges={edges}
              nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onNodeDragStart={onNodeDragStart}
              onConnect={onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              connectionMode={ConnectionMode.Strict}
              snapToGrid
              snapGrid={SNAP_GRID}
              deleteKeyCode={null}
              selectionKeyCode="Shift"
              multiSelectionKeyCode={['Meta', 'Control', 'Shift']}
              zoomOnDoubleClick={false}
              onlyRenderVisibleElements={graph.nodes.length > LARGE_GRAPH_NODES}
              // Once per opened graph (the editor is remounted per graph). A large graph opens at a readable
              // zoom around its centre rather than as 500 specks: only what is in view is drawn.
              fitView
              fitViewOptions={graph.nodes.length > LARGE_GRAPH_NODES ? LARGE_FIT : SMALL_FIT}
              minZoom={0.05}
              maxZoom={2.5}
              proOptions={{ hideAttribution: true }}
            >
              <Background variant={BackgroundVariant.Dots} gap={20} size={1} />
              <MiniMap
                pannable
                zoomable
                ariaLabel="Mini map"
                nodeColor={(n) =>
                  n.type === 'frame'
                    ? 'transparent'
                    : familyColor((n as FlowNode & { data: { type?: CatalogNode } }).data.type?.family)
                }
              />
              <Controls aria-label="Zoom and view" />
            </ReactFlow>
            {quickAdd && (
              <QuickAdd
                types={typeList}
                at={quickAdd.screen}
                onClose={() => setQuickAdd(null)}
                onPick={(type) => {
                  addAt(type, quickAdd.flow);
                  setQuickAdd(null);
                }}
              />
            )}
            {graph.nodes.length === 0 && (
              <p className="canvas-empty hint">
                Drag a node from the palette, double-click here (or press Shift+A) to search, or open a
                template.
              </p>
            )}
          </div>
        </div>
        <aside className="inspector-column" aria-label="Inspector">
          {inspected ? (
            <Inspector
              graph={graph}
              node={inspected}
              type={types.get(inspected.type)}
              types={types}
              diagnostics={byNode.get(inspected.id) ?? []}
              onParam={(nodeId, path, value) =>
                edit(setParam(graphRef.current, nodeId, path, value), `param:${nodeId}:${path}`)
              }
              onLabel={(nodeId, label) => edit(setLabel(graphRef.current, nodeId, label), `label:${nodeId}`)}
              onConnect={(from, to) => {
                const result = connect(graphRef.current, types, from, to);
                if (result.ok) edit(result.graph);
                else onProblem(`Wire refused: ${result.reason}.`);
              }}
              onDisconnect={(ids) => edit(removeElements(graphRef.current, { edges: ids }))}
              edgeIdOf={edgeId}
            />
          ) : (
            <GraphSummary
              graph={graph}
              diagnostics={diagnostics}
              selectedCount={selectedNodeIds.length}
              onSelect={(nodeId) => {
                setNodes((current) =>
                  current.map((n) =>
                    n.selected === (n.id === nodeId) ? n : { ...n, selected: n.id === nodeId },
                  ),
                );
              }}
            />
          )}
        </aside>
      </div>

      <dialog
        ref={helpRef}
        className="shortcuts"
        aria-labelledby="shortcuts-title"
        onClose={() => setHelpOpen(false)}
      >
        <header>
          <h2 id="shortcuts-title">Keyboard shortcuts</h2>
          <button type="button" onClick={() => setHelpOpen(false)}>
            Close
          </button>
        </header>
        <table aria-label="shortcuts">
          <tbody>
            {SHORTCUTS.map(([keys, action]) => (
              <tr key={keys}>
                <th scope="row">
                  <kbd>{keys}</kbd>
                </th>
                <td>{action}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="hint">Ctrl is Cmd on a Mac.</p>
      </dialog>
    </EditorLookupsContext.Provider>
  );
}

/** With no single node selected: the graph's facts and every diagnostic, each a way to its node. */
function GraphSummary({
  graph,
  diagnostics,
  selectedCount,
  onSelect,
}: {
  graph: GraphFile;
  diagnostics: readonly Diagnostic[];
  selectedCount: number;
  onSelect(nodeId: string): void;
}) {
  return (
    <section className="inspector" aria-labelledby="summary-title">
      <h2 id="summary-title">{selectedCount > 1 ? `${selectedCount} nodes selected` : 'Graph'}</h2>
      <p className="hint">
        {graph.nodes.length} nodes, {graph.edges.length} wires, seed {graph.seed}, {graph.run.iterations}{' '}
        iterations on backend “{graph.run.backend}”. Select a node to edit it.
      </p>
      {diagnostics.length > 0 && (
        <ul aria-label="diagnostics" className="diagnostics">
          {diagnostics.slice(0, SUMMARY_DIAGNOSTICS).map((d, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: diagnostics have no identity of their own.
            <li key={i} className={d.severity}>
              {d.nodeId ? (
                <button type="button" className="link" onClick={() => onSelect(d.nodeId!)}>
                  {d.severity}: {d.nodeId}
                  {d.param ? `.${d.param}` : d.port ? `.${d.port}` : ''}: {d.message}
                </button>
              ) : (
                `${d.severity}: ${d.message}`
              )}
            </li>
          ))}
          {diagnostics.length > SUMMARY_DIAGNOSTICS && (
            <li>and {diagnostics.length - SUMMARY_DIAGNOSTICS} more, shown on their nodes</li>
          )}
        </ul>
      )}
    </section>
  );
}
