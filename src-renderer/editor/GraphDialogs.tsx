/** The graph list (create, open, rename, duplicate, delete with undo) and a graph's version history. */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { GraphStore, StoredGraph, StoredVersion } from '../store/graph-db.ts';

function useModal(open: boolean) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return ref;
}

const when = (ms: number) => new Date(ms).toLocaleString();

export function GraphListDialog(props: {
  open: boolean;
  store: GraphStore;
  currentId?: string;
  currentName?: string;
  onClose(): void;
  onOpen(graph: StoredGraph): void | Promise<void>;
  onNew(): void | Promise<void>;
  /** The open graph was renamed: the editor records it (undoable) and autosaves it. */
  onRenamedCurrent(name: string): void;
  onDeletedCurrent(): void;
  onNotice(text: string, undo?: () => void): void;
  onError(error: unknown): void;
}) {
  const {
    open,
    store,
    currentId,
    currentName,
    onClose,
    onOpen,
    onNew,
    onRenamedCurrent,
    onDeletedCurrent,
    onNotice,
    onError,
  } = props;
  const ref = useModal(open);
  const [graphs, setGraphs] = useState<StoredGraph[]>([]);
  const [renaming, setRenaming] = useState<string | null>(null);

  const refresh = useCallback(() => store.list().then(setGraphs, onError), [store, onError]);
  useEffect(() => {
    if (open) void refresh();
  }, [open, refresh]);

  const rename = async (graph: StoredGraph, name: string) => {
    setRenaming(null);
    const clean = name.trim();
    if (!clean || clean === graph.name) return;
    try {
      if (graph.id === currentId) onRenamedCurrent(clean);
      else await store.rename(graph.id, clean);
      await refresh();
    } catch (e) {
      onError(e);
    }
  };

  const remove = async (graph: StoredGraph) => {
    try {
      await store.delete(graph.id);
      await refresh();
      if (graph.id === currentId) onDeletedCurrent();
      onNotice(`Deleted “${graph.name}”.`, () => {
        store.undelete(graph.id).then(async () => {
          await refresh();
          const back = await store.get(graph.id);
          if (back && graph.id === currentId) await onOpen(back);
        }, onError);
      });
    } catch (e) {
      onError(e);
    }
  };

  return (
    <dialog ref={ref} className="graph-list" aria-labelledby="graphs-title" onClose={onClose}>
      <header>
        <h2 id="graphs-title">Graphs</h2>
        <button type="button" onClick={() => void onNew()}>
          New graph
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      {graphs.length === 0 ? (
        <p className="hint">No graphs yet: create one or load a template.</p>
      ) : (
        <ul aria-label="saved graphs">
          {graphs.map((g) => {
            const name = g.id === currentId && currentName ? currentName : g.name;
            return (
              <li key={g.id} className={g.id === currentId ? 'current' : ''}>
                {renaming === g.id ? (
                  <input
                    aria-label={`New name for ${name}`}
                    defaultValue={name}
                    autoFocus
                    onBlur={(e) => void rename(g, e.target.value)}
                    onKeyDown={(e) => {
                      if (e.key === 'Enter') e.currentTarget.blur();
                      if (e.key === 'Escape') {
                        e.stopPropagation();
                        e.preventDefault();
                        setRenaming(null);
                      }
                    }}
                  />
                ) : (
                  <span className="graph-name">
                    {name}
                    {g.id === currentId ? ' (open)' : ''}
                  </span>
                )}
                <span className="hint">
                  {g.graph.nodes.length} nodes · {when(g.updatedAt)}
                </span>
                <button
                  type="button"
                  onClick={() => void onOpen(g)}
                  aria-label={`Open ${name}`}
                  disabled={g.id === currentId}
                >
                  Open
                </button>
                <button type="button" onClick={() => setRenaming(g.id)} aria-label={`Rename ${name}`}>
                  Rename
                </button>
                <button
                  type="button"
                  onClick={() => store.duplicate(g.id).then(refresh, onError)}
                  aria-label={`Duplicate ${name}`}
                >
                  Duplicate
                </button>
                <button type="button" onClick={() => void remove(g)} aria-label={`Delete ${name}`}>
                  Delete
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </dialog>
  );
}

export function VersionsDialog(props: {
  open: boolean;
  store: GraphStore;
  graphId?: string;
  onClose(): void;
  onRestore(versionId: number): void | Promise<void>;
  onError(error: unknown): void;
}) {
  const { open, store, graphId, onClose, onRestore, onError } = props;
  const ref = useModal(open);
  const [versions, setVersions] = useState<StoredVersion[] | null>(null);
  useEffect(() => {
    if (!open || !graphId) return;
    setVersions(null);
    store.versions(graphId).then(setVersions, onError);
  }, [open, graphId, store, onError]);

  return (
    <dialog ref={ref} className="versions" aria-labelledby="versions-title" onClose={onClose}>
      <header>
        <h2 id="versions-title">Version history</h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      <p className="hint">
        Versions are kept when a graph is created, every few minutes while you edit, when you press Ctrl+S,
        and before a restore.
      </p>
      {versions === null ? (
        <p>Loading versions…</p>
      ) : (
        <ol aria-label="versions">
          {versions.map((v, index) => (
            <li key={v.id}>
              <span>{when(v.savedAt)}</span> <span className="hint">{v.reason}</span>{' '}
              <span className="hint">{v.nodeCount} nodes</span>
              <button
                type="button"
                onClick={() => void onRestore(v.id!)}
                aria-label={`Restore version ${versions.length - index} (${v.reason}, ${v.nodeCount} nodes)`}
              >
                Restore
              </button>
            </li>
          ))}
        </ol>
      )}
    </dialog>
  );
}
