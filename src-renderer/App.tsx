/**
 * The app shell: toolbar (files, graphs, versions, templates, run controls), the editor (palette, canvas,
 * inspector) and the run dock. It talks only to a StudioApi; it never imports tfjs or node implementations.
 * Graphs live in the renderer's Dexie store: every edit is autosaved, with a version history per graph.
 */
import { ReactFlowProvider } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { type ChangeEvent, useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import type {
  Catalog,
  Diagnostic,
  ExportedCode,
  GraphFile,
  StudioInfo,
  TemplateSummary,
} from '../src-main/api/studio-api.ts';
import type { Connection } from './api/connect.ts';
import type { ConnectionState } from './api/ws-client.ts';
import { ExportDialog } from './ExportDialog.tsx';
import { GraphListDialog, VersionsDialog } from './editor/GraphDialogs.tsx';
import { GraphEditor } from './editor/GraphEditor.tsx';
import { RunProvider, RunToolbar, RunWorkspace } from './run/RunWorkspace.tsx';
import { GraphStore, type StoredGraph } from './store/graph-db.ts';
import { fileNameFor, readGraphText } from './store/graph-file.ts';
import { catalogIndex, newGraph } from './store/graph-model.ts';
import { commit, type History, redo, startHistory, undo } from './store/history.ts';
import { migrateNodeTypes } from './store/node-migrations.ts';

// Desktop errors arrive as plain objects {code, message, diagnostics}; web-mode ones as Errors with those fields.
const errorMessage = (error: unknown): string =>
  typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);

const AUTOSAVE_DELAY_MS = 400;
const VALIDATE_DELAY_MS = 200;
const OPEN_GRAPH_SETTING = 'openGraphId';

type HistoryAction =
  | { type: 'load'; graph: GraphFile; migrated?: GraphFile }
  | { type: 'edit'; graph: GraphFile; mergeKey?: string }
  | { type: 'undo' }
  | { type: 'redo' }
  | { type: 'clear' };

function historyReducer(state: History | null, action: HistoryAction): History | null {
  if (action.type === 'load') {
    const start = startHistory(action.graph);
    return action.migrated ? commit(start, action.migrated) : start;
  }
  if (!state || action.type === 'clear') return null;
  if (action.type === 'edit') return commit(state, action.graph, action.mergeKey);
  return action.type === 'undo' ? undo(state) : redo(state);
}

type SaveState = 'saved' | 'saving' | 'unsaved' | 'failed';

export function App({ connection }: { connection: Connection }) {
  const { api } = connection;
  // One store per window, open for the window's life.
  const store = useMemo(() => new GraphStore(), []);
  const [info, setInfo] = useState<StudioInfo>();
  const [connectionState, setConnectionState] = useState<ConnectionState>(
    connection.mode === 'desktop' ? 'open' : 'connecting',
  );
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [templates, setTemplates] = useState<TemplateSummary[] | null>(null);
  const [galleryOpen, setGalleryOpen] = useState(false);
  const [graphsOpen, setGraphsOpen] = useState(false);
  const [versionsOpen, setVersionsOpen] = useState(false);
  const [exportOpen, setExportOpen] = useState(false);
  const [exported, setExported] = useState<{ code?: ExportedCode; error?: string }>({});
  const [current, setCurrent] = useState<StoredGraph | null>(null);
  const [history, dispatch] = useReducer(historyReducer, null);
  const graph = history?.present ?? null;
  const [graphPath, setGraphPath] = useState<string>();
  const [diagnostics, setDiagnostics] = useState<Diagnostic[]>([]);
  const [validatedGraph, setValidatedGraph] = useState<GraphFile | null>(null);
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<{ text: string; undo?: () => void }>();
  const [saveState, setSaveState] = useState<SaveState>('saved');
  const [starting, setStarting] = useState(true);
  const galleryRef = useRef<HTMLDialogElement>(null);
  const fileInputRef = useRef<HTMLInputElement>(null);
  const savedGraph = useRef<GraphFile | null>(null);

  const report = useCallback((e: unknown) => setError(errorMessage(e)), []);
  const onRunError = useCallback((message: string | undefined) => setError(message), []);

  /** Put a stored graph in the editor; node types with newer versions are upgraded (one undo step). */
  const openStored = useCallback(
    async (stored: StoredGraph, knownCatalog: Catalog | null = catalog) => {
      setCurrent(stored);
      setGraphPath(undefined);
      savedGraph.current = stored.graph;
      let upgraded: GraphFile | undefined;
      if (knownCatalog) {
        try {
          // The node types' own migrations run in the main process.
          const outcome = await migrateNodeTypes(stored.graph, catalogIndex(knownCatalog), (g) =>
            api.migrateGraph(g),
          );
          if (outcome.notice) setNotice({ text: outcome.notice });
          if (outcome.graph !== stored.graph) upgraded = outcome.graph;
        } catch (e) {
          report(e);
        }
      }
      dispatch({ type: 'load', graph: stored.graph, migrated: upgraded });
      setSaveState(upgraded ? 'unsaved' : 'saved');
      await store.setSetting(OPEN_GRAPH_SETTING, stored.id).catch(report);
    },
    [api, catalog, store, report],
  );

  const openGallery = useCallback(async () => {
    setGalleryOpen(true);
    try {
      setTemplates(await api.listTemplates());
    } catch (e) {
      report(e);
    }
  }, [api, report]);

  // Start: catalog, then the graph that was open (or the gallery, on first start). Once per window.
  // biome-ignore lint/correctness/useExhaustiveDependencies: later catalog or store changes must not restart the app.
  useEffect(() => {
    connection.onConnectionChange(setConnectionState);
    let cancelled = false;
    (async () => {
      try {
        api.getInfo().then((found) => !cancelled && setInfo(found), report);
        const found = await api.catalog();
        if (cancelled) return;
        setCatalog(found);
        await store.purgeDeleted().catch(report);
        const graphs = await store.list();
        const lastId = await store.getSetting<string>(OPEN_GRAPH_SETTING);
        const last = graphs.find((g) => g.id === lastId) ?? graphs[0];
        if (cancelled) return;
        if (last) await openStored(last, found);
        else void openGallery();
      } catch (e) {
        if (!cancelled) report(e);
      } finally {
        if (!cancelled) setStarting(false);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, []);

  // Autosave, debounced; a full storage is reported, never swallowed.
  useEffect(() => {
    if (!graph || !current || graph === savedGraph.current) return;
    setSaveState('unsaved');
    const timer = setTimeout(() => {
      setSaveState('saving');
      const saving = graph;
      store.save(current.id, saving).then(
        () => {
          savedGraph.current = saving;
          setSaveState((s) => (s === 'saving' ? 'saved' : s));
        },
        (e) => {
          setSaveState('failed');
          report(e);
        },
      );
    }, AUTOSAVE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [graph, current, store, report]);

  // Live diagnostics: the compiler's own check, as the user edits.
  useEffect(() => {
    if (!graph) {
      setDiagnostics([]);
      return;
    }
    let stale = false;
    const timer = setTimeout(() => {
      api.validate(graph).then(
        (result) => {
          if (stale) return;
          setDiagnostics(result.diagnostics);
          setValidatedGraph(graph);
        },
        (e) => !stale && report(e),
      );
    }, VALIDATE_DELAY_MS);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [graph, api, report]);

  useEffect(() => {
    const dialog = galleryRef.current;
    if (!dialog) return;
    if (galleryOpen && !dialog.open) dialog.showModal();
    if (!galleryOpen && dialog.open) dialog.close();
  }, [galleryOpen]);

  const createAndOpen = async (next: GraphFile, reason: string) => {
    const stored = await store.create(next, reason);
    await openStored(stored);
    setError(undefined);
  };

  const loadTemplate = async (template: TemplateSummary) => {
    try {
      const { template: _card, ...graphOnly } = await api.getTemplate(template.id);
      await createAndOpen(graphOnly as GraphFile, `from template “${template.card.title}”`);
      setGalleryOpen(false);
    } catch (e) {
      report(e);
    }
  };

  const openFile = async () => {
    if (info?.capabilities.fileDialogs) {
      try {
        const opened = await api.openGraphFile();
        if (!opened) return;
        if (!opened.graph) {
          const reasons = opened.diagnostics.map((d) => d.message).join('; ');
          setError(`${opened.fileName} cannot be opened: ${reasons || 'it is not a graph file'}.`);
          return;
        }
        await createAndOpen(opened.graph, `opened from ${opened.fileName}`);
        setGraphPath(opened.path);
        if (opened.migratedFrom !== undefined)
          setNotice({
            text: `${opened.fileName} was written in file format version ${opened.migratedFrom}; it was upgraded on load.`,
          });
      } catch (e) {
        report(e);
      }
    } else {
      fileInputRef.current?.click();
    }
  };

  const uploadFile = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    event.target.value = '';
    if (!file) return;
    try {
      const read = readGraphText(await file.text(), file.name);
      // A file that cannot be read leaves the open graph as it is.
      if (!read.ok) {
        setError(read.reason);
        return;
      }
      await createAndOpen(read.graph, `opened from ${file.name}`);
      if (read.migratedFrom !== undefined)
        setNotice({
          text: `${file.name} was written in file format version ${read.migratedFrom}; it was upgraded on load.`,
        });
    } catch (e) {
      report(e);
    }
  };

  const saveFile = async () => {
    if (!graph) return;
    if (info?.capabilities.fileDialogs) {
      try {
        const saved = await api.saveGraphFile(graph, graphPath ? { path: graphPath } : {});
        if (saved) setGraphPath(saved.path);
      } catch (e) {
        report(e);
      }
      return;
    }
    const url = URL.createObjectURL(
      new Blob([`${JSON.stringify(graph, null, 2)}\n`], { type: 'application/json' }),
    );
    const link = document.createElement('a');
    link.href = url;
    link.download = fileNameFor(graph);
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const openExport = async () => {
    if (!graph) return;
    setExported({});
    setExportOpen(true);
    try {
      setExported({ code: await api.exportGraph(graph) });
    } catch (e) {
      setExported({ error: errorMessage(e) });
    }
  };

  const keepVersion = useCallback(async () => {
    if (!graph || !current) return;
    try {
      await store.keepVersion(current.id, graph, 'saved by you');
      savedGraph.current = graph;
      setSaveState('saved');
      setNotice({ text: 'This version was kept in the history.' });
    } catch (e) {
      report(e);
    }
  }, [graph, current, store, report]);

  const restoreVersion = async (versionId: number) => {
    if (!graph || !current) return;
    try {
      const version = await store.version(versionId);
      if (!version) throw new Error('That version is no longer stored.');
      await store.keepVersion(current.id, graph, 'before restore');
      dispatch({ type: 'edit', graph: { ...version.graph, name: graph.name } });
      setVersionsOpen(false);
      setNotice({
        text: `Restored the version of ${new Date(version.savedAt).toLocaleString()}. Undo brings back what you had.`,
      });
    } catch (e) {
      report(e);
    }
  };

  const newGraphNamed = async () => {
    try {
      const names = new Set((await store.list()).map((g) => g.name));
      let name = 'Untitled graph';
      for (let i = 2; names.has(name); i++) name = `Untitled graph ${i}`;
      await createAndOpen(newGraph(name), 'created');
      setGraphsOpen(false);
    } catch (e) {
      report(e);
    }
  };

  const onEdit = useCallback(
    (next: GraphFile, mergeKey?: string) => dispatch({ type: 'edit', graph: next, mergeKey }),
    [],
  );
  const onUndo = useCallback(() => dispatch({ type: 'undo' }), []);
  const onRedo = useCallback(() => dispatch({ type: 'redo' }), []);
  const onProblem = useCallback((message: string) => setError(message), []);
  const renameCurrent = (name: string) => graph && onEdit({ ...graph, name }, 'rename');

  const errors = diagnostics.filter((d) => d.severity === 'error');
  const runBlockedReason = !graph
    ? 'Open or create a graph to run it.'
    : validatedGraph !== graph
      ? 'Checking the graph…'
      : errors.length > 0
        ? `Run is blocked by ${errors.length} error${errors.length === 1 ? '' : 's'}: ${errors[0].nodeId ? `${errors[0].nodeId}${errors[0].param ? `.${errors[0].param}` : errors[0].port ? `.${errors[0].port}` : ''}: ` : ''}${errors[0].message}`
        : undefined;

  return (
    <RunProvider api={api} graph={graph} onDiagnostics={setDiagnostics} onError={onRunError}>
      <div className="app">
        <header className="toolbar">
          <h1>Agent RL Studio</h1>
          <button type="button" onClick={openGallery}>
            Templates
          </button>
          <button type="button" onClick={() => setGraphsOpen(true)}>
            Graphs
          </button>
          <button type="button" onClick={openFile}>
            Open…
          </button>
          <button type="button" onClick={saveFile} disabled={!graph}>
            Save
          </button>
          <button type="button" onClick={() => setVersionsOpen(true)} disabled={!current}>
            History
          </button>
          <button type="button" onClick={openExport} disabled={!graph}>
            Export
          </button>
          <input
            ref={fileInputRef}
            type="file"
            accept=".json,application/json"
            hidden
            onChange={uploadFile}
            aria-label="Graph file"
          />
          <span className="separator" />
          <RunToolbar blockedReason={errors.length > 0 ? runBlockedReason : undefined} />
          {connection.mode === 'web' && (
            <output className={`connection ${connectionState}`} aria-label="connection">
              {connectionState === 'open'
                ? 'connected'
                : connectionState === 'connecting'
                  ? 'reconnecting…'
                  : 'disconnected'}
            </output>
          )}
        </header>
        {runBlockedReason && graph && (
          <p className="run-blocked" id="run-blocked-reason" role="status" aria-label="why Run is disabled">
            {runBlockedReason}
          </p>
        )}

        {error && (
          <div className="error" role="alert">
            {error}
            <button type="button" onClick={() => setError(undefined)} aria-label="Dismiss error">
              ×
            </button>
          </div>
        )}
        {notice && (
          <div className="notice" role="status" aria-label="notice">
            {notice.text}
            {notice.undo && (
              <button
                type="button"
                onClick={() => {
                  notice.undo?.();
                  setNotice(undefined);
                }}
              >
                Undo
              </button>
            )}
            <button type="button" onClick={() => setNotice(undefined)} aria-label="Dismiss notice">
              ×
            </button>
          </div>
        )}

        <main className="workspace">
          <section className="graph" aria-labelledby="graph-title">
            <div className="graph-header">
              <h2 id="graph-title">{graph ? graph.name : starting ? 'Loading…' : 'No graph open'}</h2>
              {graph && (
                <output className={`save-state ${saveState}`} aria-label="save state">
                  {saveState === 'saving' ? 'saving…' : saveState === 'failed' ? 'not saved' : saveState}
                </output>
              )}
            </div>
            {graph ? (
              <ReactFlowProvider key={current?.id}>
                <GraphEditor
                  graph={graph}
                  catalog={catalog}
                  diagnostics={diagnostics}
                  onEdit={onEdit}
                  onUndo={onUndo}
                  onRedo={onRedo}
                  canUndo={(history?.past.length ?? 0) > 0}
                  canRedo={(history?.future.length ?? 0) > 0}
                  onKeepVersion={keepVersion}
                  onProblem={onProblem}
                />
              </ReactFlowProvider>
            ) : (
              !starting && (
                <p className="hint">
                  Open the Templates gallery to start from a working pipeline, or create a graph in Graphs.
                </p>
              )
            )}
          </section>
          {/* The run dock (issue 7): the run workspace lives here, below the editor. */}
          <div className="run-dock">
            <RunWorkspace />
          </div>
        </main>

        <dialog
          ref={galleryRef}
          className="gallery"
          aria-labelledby="gallery-title"
          onClose={() => setGalleryOpen(false)}
        >
          <header>
            <h2 id="gallery-title">Templates</h2>
            <button type="button" onClick={() => setGalleryOpen(false)}>
              Close
            </button>
          </header>
          <p className="hint">Each template opens as a new graph of your own.</p>
          {templates === null ? (
            <p>Loading templates…</p>
          ) : templates.length === 0 ? (
            <p>No templates found.</p>
          ) : (
            <ul className="cards" aria-label="template cards">
              {templates.map((t) => (
                <li key={t.id}>
                  <article aria-labelledby={`template-${t.id}`}>
                    <h3 id={`template-${t.id}`}>{t.card.title}</h3>
                    <p>{t.card.description}</p>
                    <p>
                      <strong>Expected result:</strong> {t.card.expectedResult}
                    </p>
                    <p className="hint">
                      {t.card.duration} · {t.nodeCount} nodes
                    </p>
                    <button type="button" onClick={() => loadTemplate(t)} aria-label={`Load ${t.card.title}`}>
                      Load
                    </button>
                  </article>
                </li>
              ))}
            </ul>
          )}
        </dialog>

        <GraphListDialog
          open={graphsOpen}
          store={store}
          currentId={current?.id}
          currentName={graph?.name}
          onClose={() => setGraphsOpen(false)}
          onOpen={async (stored) => {
            await openStored(stored);
            setGraphsOpen(false);
          }}
          onNew={newGraphNamed}
          onRenamedCurrent={renameCurrent}
          onDeletedCurrent={() => {
            setCurrent(null);
            dispatch({ type: 'clear' });
            void store.list().then((left) => (left[0] ? openStored(left[0]) : openGallery()));
          }}
          onNotice={(text, undoAction) => setNotice({ text, undo: undoAction })}
          onError={report}
        />
        <VersionsDialog
          open={versionsOpen}
          store={store}
          graphId={current?.id}
          onClose={() => setVersionsOpen(false)}
          onRestore={restoreVersion}
          onError={report}
        />
        <ExportDialog
          open={exportOpen}
          exported={exported.code}
          error={exported.error}
          onClose={() => setExportOpen(false)}
        />
      </div>
    </RunProvider>
  );
}
