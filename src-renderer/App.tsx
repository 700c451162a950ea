/**
 * The app shell: toolbar, template gallery, the loaded graph (as a node list until the canvas lands) and
 * the run dock. It talks only to a StudioApi; it never imports the engine or tfjs.
 */
import { type ChangeEvent, useCallback, useEffect, useReducer, useRef, useState } from 'react';
import type {
  Diagnostic,
  ExportedCode,
  GraphFile,
  RunEvent,
  RunInfo,
  StudioInfo,
  TemplateSummary,
} from '../src-main/api/studio-api.ts';
import type { Connection } from './api/connect.ts';
import type { ConnectionState } from './api/ws-client.ts';
import { ExportDialog } from './ExportDialog.tsx';
import { applyRunEvent, isActiveStatus, newRunView, type RunView } from './run-state.ts';

type RunAction = { type: 'attach'; view: RunView } | { type: 'event'; runId: string; event: RunEvent };

function runReducer(state: RunView | null, action: RunAction): RunView | null {
  if (action.type === 'attach') return action.view;
  // Events of a run no longer shown (late ones after switching) are ignored.
  if (!state || state.runId !== action.runId) return state;
  return applyRunEvent(state, action.event);
}

// Desktop errors arrive as plain objects {code, message, diagnostics}; web-mode ones as Errors with those fields.
const errorMessage = (error: unknown): string =>
  typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
const diagnosticsOf = (error: unknown): Diagnostic[] | undefined =>
  typeof error === 'object' && error !== null && 'diagnostics' in error
    ? (error as { diagnostics?: Diagnostic[] }).diagnostics
    : undefined;

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1000 || Math.abs(value) < 0.001 ? value.toExponential(3) : value.toPrecision(4);
}

function fileNameFor(graph: GraphFile): string {
  const base =
    graph.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'graph';
  return `${base}.json`;
}

export function App({ connection }: { connection: Connection }) {
  const { api } = connection;
  const [info, setInfo] = useState<StudioInfo>();
  const [connectionState, setConnectionState] = useState<ConnectionState>(
    connection.mode === 'desktop' ? 'open' : 'connecting',
  );
  const [templates, setTemplates] = useState<TemplateSummary[] | null>(null);
  const [galleryOpen, setGalleryOpen] = useState(false);
  const [exportOpen, setExportOpen] = useState(false);
  const [exported, setExported] = useState<{ code?: ExportedCode; error?: string }>({});
  const [graph, setGraph] = useState<GraphFile | null>(null);
  const [graphPath, setGraphPath] = useState<string>();
  const [diagnostics, setDiagnostics] = useState<Diagnostic[]>([]);
  const [iterations, setIterations] = useState('');
  const [run, dispatchRun] = useReducer(runReducer, null);
  const [runs, setRuns] = useState<RunInfo[]>([]);
  const [error, setError] = useState<string>();
  const subscription = useRef<string | undefined>(undefined);
  const galleryRef = useRef<HTMLDialogElement>(null);
  const fileInputRef = useRef<HTMLInputElement>(null);

  const report = useCallback((e: unknown) => {
    setError(errorMessage(e));
    const found = diagnosticsOf(e);
    if (found) setDiagnostics(found);
  }, []);

  const refreshRuns = useCallback(async () => {
    try {
      setRuns(await api.listRuns());
    } catch (e) {
      report(e);
    }
  }, [api, report]);

  const attach = useCallback(
    async (runId: string, graphName: string, totalIterations: number) => {
      const previous = subscription.current;
      subscription.current = undefined;
      if (previous) api.unsubscribe(previous).catch(report);
      dispatchRun({ type: 'attach', view: newRunView(runId, graphName, totalIterations) });
      try {
        subscription.current = await api.subscribe(runId, (event) =>
          dispatchRun({ type: 'event', runId, event }),
        );
      } catch (e) {
        report(e);
      }
    },
    [api, report],
  );

  // On load (and after a reload): show the newest active run, with its whole history.
  useEffect(() => {
    connection.onConnectionChange(setConnectionState);
    let cancelled = false;
    (async () => {
      try {
        setInfo(await api.getInfo());
        const list = await api.listRuns();
        if (cancelled) return;
        setRuns(list);
        const active = list.find((r) => r.active);
        if (active) await attach(active.id, active.graphName, active.totalIterations);
      } catch (e) {
        if (!cancelled) report(e);
      }
    })();
    return () => {
      cancelled = true;
      if (subscription.current) api.unsubscribe(subscription.current).catch(() => {});
    };
  }, [api, attach, connection, report]);

  // Keep the run list current as the shown run changes state.
  const status = run?.status;
  useEffect(() => {
    if (status && status !== 'connecting') void refreshRuns();
  }, [status, refreshRuns]);

  useEffect(() => {
    const dialog = galleryRef.current;
    if (!dialog) return;
    if (galleryOpen && !dialog.open) dialog.showModal();
    if (!galleryOpen && dialog.open) dialog.close();
  }, [galleryOpen]);

  const openGallery = async () => {
    setGalleryOpen(true);
    if (templates === null) {
      try {
        setTemplates(await api.listTemplates());
      } catch (e) {
        report(e);
      }
    }
  };

  const showGraph = async (next: GraphFile, path?: string) => {
    setGraph(next);
    setGraphPath(path);
    setIterations('');
    setError(undefined);
    try {
      setDiagnostics((await api.validate(next)).diagnostics);
    } catch (e) {
      report(e);
    }
  };

  const loadTemplate = async (template: TemplateSummary) => {
    try {
      await showGraph(await api.getTemplate(template.id));
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
        if (opened.graph) await showGraph(opened.graph, opened.path);
        else {
          setDiagnostics(opened.diagnostics);
          setError(`${opened.fileName} is not a graph file.`);
        }
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
      const value: unknown = JSON.parse(await file.text());
      const result = await api.validate(value);
      if (typeof value !== 'object' || value === null || !('nodes' in value)) {
        setDiagnostics(result.diagnostics);
        setError(`${file.name} is not a graph file.`);
        return;
      }
      await showGraph(value as GraphFile);
    } catch (e) {
      report(e instanceof SyntaxError ? new Error(`${file.name} is not valid JSON: ${e.message}`) : e);
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
      const found = diagnosticsOf(e);
      if (found) setDiagnostics(found);
      setExported({ error: errorMessage(e) });
    }
  };

  const startRun = async () => {
    if (!graph) return;
    setError(undefined);
    const override = iterations.trim() ? Number(iterations) : undefined;
    if (override !== undefined && (!Number.isInteger(override) || override < 1)) {
      setError('Iterations must be a whole number of at least 1.');
      return;
    }
    try {
      const { runId } = await api.startRun({ graph, iterations: override });
      await attach(runId, graph.name, override ?? graph.run.iterations);
      void refreshRuns();
    } catch (e) {
      report(e);
    }
  };

  const control = (action: (runId: string) => Promise<void>) => async () => {
    if (!run) return;
    try {
      await action(run.runId);
    } catch (e) {
      report(e);
    }
  };

  const resumeFromCheckpoint = async (target: RunInfo) => {
    try {
      await attach(target.id, target.graphName, target.totalIterations);
      await api.resumeRunFromCheckpoint(target.id);
      void refreshRuns();
    } catch (e) {
      report(e);
    }
  };

  const active = isActiveStatus(run?.status);
  const stateWord = run ? run.status : 'idle';
  const metricNames = run ? Object.keys(run.metrics).sort() : [];

  return (
    <div className="app">
      <header className="toolbar">
        <h1>Agent RL Studio</h1>
        <button type="button" onClick={openGallery}>
          Templates
        </button>
        <button type="button" onClick={openFile}>
          Open…
        </button>
        <button type="button" onClick={saveFile} disabled={!graph}>
          Save
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
        <label className="iterations">
          Iterations
          <input
            type="number"
            min={1}
            inputMode="numeric"
            value={iterations}
            placeholder={graph ? String(graph.run.iterations) : ''}
            onChange={(e) => setIterations(e.target.value)}
          />
        </label>
        <button type="button" onClick={startRun} disabled={!graph || active}>
          Run
        </button>
        <button
          type="button"
          onClick={control((id) => api.pauseRun(id))}
          disabled={!(run?.status === 'running' || run?.status === 'starting')}
        >
          Pause
        </button>
        <button
          type="button"
          onClick={control((id) => api.resumeRun(id))}
          disabled={run?.status !== 'paused'}
        >
          Resume
        </button>
        <button
          type="button"
          onClick={control((id) => api.stepRun(id, 1))}
          disabled={run?.status !== 'paused'}
        >
          Step
        </button>
        <button
          type="button"
          onClick={control((id) => api.stopRun(id))}
          disabled={!active || run?.status === 'connecting'}
        >
          Stop
        </button>
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

      {error && (
        <div className="error" role="alert">
          {error}
          <button type="button" onClick={() => setError(undefined)} aria-label="Dismiss error">
            ×
          </button>
        </div>
      )}

      <main className="panels">
        <section className="graph" aria-labelledby="graph-title">
          <h2 id="graph-title">{graph ? graph.name : 'No graph loaded'}</h2>
          {graph ? (
            <>
              <p className="hint">
                {graph.nodes.length} nodes, {graph.edges.length} wires, seed {graph.seed},{' '}
                {graph.run.iterations} iterations on backend “{graph.run.backend}”.
              </p>
              <ul aria-label="nodes" className="nodes">
                {graph.nodes.map((node) => (
                  <li key={node.id}>
                    <strong>{node.label ?? node.id}</strong> <code>{node.type}</code>
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <p className="hint">Open the Templates gallery to start from a working pipeline.</p>
          )}
          {diagnostics.length > 0 && (
            <ul aria-label="diagnostics" className="diagnostics">
              {diagnostics.map((d, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: diagnostics have no identity of their own.
                <li key={i} className={d.severity}>
                  {d.severity}:{' '}
                  {d.nodeId ? `${d.nodeId}${d.param ? `.${d.param}` : d.port ? `.${d.port}` : ''}: ` : ''}
                  {d.message}
                </li>
              ))}
            </ul>
          )}
        </section>

        <section className="run" aria-labelledby="run-title">
          <h2 id="run-title">Run{run ? `: ${run.graphName}` : ''}</h2>
          <dl className="run-facts">
            <dt>State</dt>
            <dd>
              <output aria-label="run state" className={`state ${stateWord}`}>
                {stateWord}
              </output>
            </dd>
            <dt>Iteration</dt>
            <dd>
              <output aria-label="iteration">
                {run ? `${run.iteration} / ${run.totalIterations}` : '–'}
              </output>
            </dd>
            <dt>Backend</dt>
            <dd>
              <output aria-label="backend">{run?.backend ?? '–'}</output>
            </dd>
            <dt>Environment steps</dt>
            <dd>
              <output aria-label="environment steps">
                {run ? run.envSteps.toLocaleString('en-US') : '–'}
              </output>
            </dd>
            <dt>Metric points</dt>
            <dd>
              <output aria-label="metric points">{run?.metricPoints ?? 0}</output>
            </dd>
            <dt>Last checkpoint</dt>
            <dd>
              <output aria-label="last checkpoint">{run?.lastCheckpoint ?? '–'}</output>
            </dd>
          </dl>
          {run?.message && <p className="run-message">{run.message}</p>}
          <table aria-label="latest metrics" className="metrics">
            <thead>
              <tr>
                <th scope="col">Metric</th>
                <th scope="col">Latest</th>
              </tr>
            </thead>
            <tbody>
              {metricNames.map((name) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>{formatValue(run!.metrics[name])}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>

        <section className="runs" aria-labelledby="runs-title">
          <h2 id="runs-title">Runs</h2>
          {runs.length === 0 ? (
            <p className="hint">No runs yet.</p>
          ) : (
            <ul aria-label="runs">
              {runs.slice(0, 20).map((listed) => {
                // The run on show is live; the others are as last listed.
                const r =
                  run && listed.id === run.runId && run.status !== 'connecting'
                    ? { ...listed, status: run.status, iteration: run.iteration }
                    : listed;
                return (
                  <li key={r.id}>
                    <span className="run-name">{r.graphName}</span>{' '}
                    <span className={`state ${r.status}`}>{r.status}</span>{' '}
                    <span>
                      {r.iteration}/{r.totalIterations}
                    </span>{' '}
                    <button
                      type="button"
                      onClick={() => attach(r.id, r.graphName, r.totalIterations)}
                      aria-label={`Show run ${r.id}`}
                    >
                      Show
                    </button>
                    {r.resumable && (
                      <button
                        type="button"
                        onClick={() => resumeFromCheckpoint(r)}
                        aria-label={`Resume run ${r.id} from checkpoint`}
                      >
                        Resume from checkpoint
                      </button>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
          {info && <p className="hint">Data folder: {info.dataDir}</p>}
        </section>
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

      <ExportDialog
        open={exportOpen}
        exported={exported.code}
        error={exported.error}
        onClose={() => setExportOpen(false)}
      />
    </div>
  );
}
