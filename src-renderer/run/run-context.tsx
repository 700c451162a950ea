/**
 * The run side of the window as one React context: which run is shown (a RunStream), the run list (the
 * main process's runs merged with this window's Dexie history) and the actions (run, pause, step...).
 * RunProvider also publishes each node's live state to the canvas (LiveNodeStateContext).
 */
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from 'react';
import type {
  BackendName,
  Diagnostic,
  GraphFile,
  RunInfo,
  StudioApi,
} from '../../src-main/api/studio-api.ts';
import { LiveNodeStateContext } from '../live-state.ts';
import type { RunView } from '../run-state.ts';
import {
  annotateRun,
  deleteRunRecord,
  listRunRecords,
  openRunDb,
  type RunDb,
  type RunRecord,
  renameRun,
  saveMetricBlocks,
  saveRunRecord,
} from './run-db.ts';
import { RunStream } from './run-stream.ts';

/** A run as the history lists it: the main process's facts and this window's record, either may be absent. */
export interface ListedRun {
  id: string;
  name: string;
  graphName: string;
  notes: string;
  info?: RunInfo;
  record?: RunRecord;
}

export interface RunController {
  api: StudioApi;
  db: RunDb;
  graph: GraphFile | null;
  /** The shown run, or null before any run is shown. */
  view: RunView | null;
  stream: RunStream | null;
  /** The Run button is checking the graph. */
  compiling: boolean;
  iterations: string;
  setIterations(value: string): void;
  /** The backend for the next run; 'graph' keeps the graph's own run setting. */
  backend: BackendName | 'graph';
  setBackend(value: BackendName | 'graph'): void;
  runs: ListedRun[];
  start(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  step(): Promise<void>;
  stop(): Promise<void>;
  show(runId: string): Promise<void>;
  resumeFromCheckpoint(runId: string): Promise<void>;
  rename(runId: string, name: string): Promise<void>;
  annotate(runId: string, notes: string): Promise<void>;
  remove(runId: string): Promise<void>;
  refreshRuns(): Promise<void>;
}

const RunContext = createContext<RunController | null>(null);

export function useRun(): RunController {
  const controller = useContext(RunContext);
  if (!controller) throw new Error('useRun needs a RunProvider above it.');
  return controller;
}

// Desktop errors arrive as plain objects {code, message, diagnostics}; web-mode ones as Errors with those fields.
export const errorMessage = (error: unknown): string =>
  typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
const diagnosticsOf = (error: unknown): Diagnostic[] | undefined =>
  typeof error === 'object' && error !== null && 'diagnostics' in error
    ? (error as { diagnostics?: Diagnostic[] }).diagnostics
    : undefined;

const noSubscribe = () => () => {};
const noView = () => null;

/** Writes a run's record and changed metric blocks after each UI update, one write at a time. */
class RunPersister {
  private busy = false;
  private pending?: RunView;

  constructor(
    private readonly db: RunDb,
    private readonly extra: () => Partial<RunRecord>,
    private readonly onError: (error: unknown) => void,
  ) {}

  schedule(view: RunView): void {
    this.pending = view;
    if (!this.busy) void this.drain();
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.pending) {
        const view = this.pending;
        this.pending = undefined;
        const from = view.series.takeChangedFrom();
        await saveRunRecord(this.db, {
          id: view.runId,
          graphName: view.graphName,
          status: view.status,
          iteration: view.iteration,
          totalIterations: view.totalIterations,
          envSteps: view.envSteps,
          durationSeconds: view.elapsedSeconds,
          backend: view.backend,
          finalMetrics: { ...view.metrics },
          ...this.extra(),
        });
        if (from !== undefined) await saveMetricBlocks(this.db, view.runId, view.series, from);
      }
    } catch (error) {
      this.onError(error);
    } finally {
      this.busy = false;
    }
  }
}

export function RunProvider({
  api,
  graph,
  onDiagnostics,
  onError,
  children,
}: {
  api: StudioApi;
  graph: GraphFile | null;
  /** Compile diagnostics for the canvas (placed on their nodes). */
  onDiagnostics: (diagnostics: Diagnostic[]) => void;
  /** A message for the window's error banner (undefined clears it). */
  onError: (message: string | undefined) => void;
  children: ReactNode;
}) {
  const db = useMemo(() => openRunDb(), []);
  const [stream, setStream] = useState<RunStream | null>(null);
  const [compiling, setCompiling] = useState(false);
  const [iterations, setIterations] = useState('');
  const [backend, setBackend] = useState<BackendName | 'graph'>('graph');
  const [serverRuns, setServerRuns] = useState<RunInfo[]>([]);
  const [records, setRecords] = useState<RunRecord[]>([]);
  const streamRef = useRef<RunStream | null>(null);
  /** Graph snapshot and seed of runs started from this window, for their records. */
  const started = useRef(new Map<string, { graph: GraphFile; seed: number }>());

  const view = useSyncExternalStore(stream?.subscribe ?? noSubscribe, stream?.getSnapshot ?? noView);

  const report = useCallback(
    (error: unknown) => {
      onError(errorMessage(error));
      const found = diagnosticsOf(error);
      if (found) onDiagnostics(found);
    },
    [onDiagnostics, onError],
  );

  const refreshRuns = useCallback(async () => {
    try {
      const [listed, stored] = await Promise.all([api.listRuns(), listRunRecords(db)]);
      setServerRuns(listed);
      setRecords(stored);
    } catch (error) {
      report(error);
    }
  }, [api, db, report]);

  const attach = useCallback(
    async (runId: string, graphName: string, totalIterations: number) => {
      streamRef.current?.close();
      const next = new RunStream(api, runId, graphName, totalIterations);
      const persister = new RunPersister(
        db,
        () => {
          const origin = started.current.get(runId);
          return origin ? { graph: origin.graph, seed: origin.seed } : {};
        },
        report,
      );
      next.onFlush = (v) => persister.schedule(v);
      streamRef.current = next;
      setStream(next);
      try {
        await next.open();
      } catch (error) {
        report(error);
      }
    },
    [api, db, report],
  );

  // On load (and after a reload): show the newest active run, with its whole history.
  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const listed = await api.listRuns();
        if (cancelled) return;
        setServerRuns(listed);
        setRecords(await listRunRecords(db));
        const active = listed.find((r) => r.active);
        if (active && !cancelled) await attach(active.id, active.graphName, active.totalIterations);
      } catch (error) {
        if (!cancelled) report(error);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [api, db, attach, report]);

  useEffect(() => () => streamRef.current?.close(), []);

  // Keep the run list current as the shown run changes state.
  const status = view?.status;
  useEffect(() => {
    if (status && status !== 'connecting') void refreshRuns();
  }, [status, refreshRuns]);

  const start = useCallback(async () => {
    if (!graph || compiling) return;
    onError(undefined);
    const override = iterations.trim() ? Number(iterations) : undefined;
    if (override !== undefined && (!Number.isInteger(override) || override < 1)) {
      onError('Iterations must be a whole number of at least 1.');
      return;
    }
    setCompiling(true);
    try {
      // Compile first: errors go to their nodes and nothing starts.
      const checked = await api.validate(graph);
      onDiagnostics(checked.diagnostics);
      if (!checked.ok) {
        const count = checked.diagnostics.filter((d) => d.severity === 'error').length;
        onError(`The graph has ${count} error${count === 1 ? '' : 's'}: fix the marked nodes, then run.`);
        return;
      }
      const { runId } = await api.startRun({
        graph,
        iterations: override,
        ...(backend === 'graph' ? {} : { backend }),
      });
      started.current.set(runId, { graph, seed: graph.seed });
      await saveRunRecord(db, {
        id: runId,
        graphName: graph.name,
        name: `${graph.name} · ${new Date().toLocaleString('en-GB', { hour12: false })}`,
        createdAt: new Date().toISOString(),
        totalIterations: override ?? graph.run.iterations,
        seed: graph.seed,
        graph,
      });
      await attach(runId, graph.name, override ?? graph.run.iterations);
      void refreshRuns();
    } catch (error) {
      report(error);
    } finally {
      setCompiling(false);
    }
  }, [api, attach, backend, compiling, db, graph, iterations, onDiagnostics, onError, refreshRuns, report]);

  const control = useCallback(
    (action: (runId: string) => Promise<void>) => async () => {
      const runId = streamRef.current?.runId;
      if (!runId) return;
      try {
        await action(runId);
      } catch (error) {
        report(error);
      }
    },
    [report],
  );

  const runs = useMemo(() => mergeRuns(serverRuns, records, view), [serverRuns, records, view]);

  const controller = useMemo<RunController>(
    () => ({
      api,
      db,
      graph,
      view,
      stream,
      compiling,
      iterations,
      setIterations,
      backend,
      setBackend,
      runs,
      start,
      pause: control((id) => api.pauseRun(id)),
      resume: control((id) => api.resumeRun(id)),
      step: control((id) => api.stepRun(id, 1)),
      stop: control((id) => api.stopRun(id)),
      refreshRuns,
      async show(runId) {
        const listed = runs.find((r) => r.id === runId);
        await attach(
          runId,
          listed?.graphName ?? runId,
          listed?.info?.totalIterations ?? listed?.record?.totalIterations ?? 0,
        );
      },
      async resumeFromCheckpoint(runId) {
        const listed = runs.find((r) => r.id === runId);
        try {
          await attach(runId, listed?.graphName ?? runId, listed?.info?.totalIterations ?? 0);
          await api.resumeRunFromCheckpoint(runId);
          void refreshRuns();
        } catch (error) {
          report(error);
        }
      },
      async rename(runId, name) {
        await ensureRecord(db, runs, runId);
        await renameRun(db, runId, name);
        void refreshRuns();
      },
      async annotate(runId, notes) {
        await ensureRecord(db, runs, runId);
        await annotateRun(db, runId, notes);
        void refreshRuns();
      },
      async remove(runId) {
        try {
          const listed = runs.find((r) => r.id === runId);
          if (listed?.info) await api.deleteRun(runId);
          await deleteRunRecord(db, runId);
          if (streamRef.current?.runId === runId) {
            streamRef.current.close();
            streamRef.current = null;
            setStream(null);
          }
        } catch (error) {
          report(error);
        }
        void refreshRuns();
      },
    }),
    [
      api,
      attach,
      backend,
      compiling,
      control,
      db,
      graph,
      iterations,
      refreshRuns,
      report,
      runs,
      start,
      stream,
      view,
    ],
  );

  return (
    <RunContext.Provider value={controller}>
      <LiveNodeStateContext.Provider value={view?.nodeStates ?? EMPTY_STATES}>
        {children}
      </LiveNodeStateContext.Provider>
    </RunContext.Provider>
  );
}

const EMPTY_STATES = new Map();

async function ensureRecord(db: RunDb, runs: ListedRun[], runId: string): Promise<void> {
  const listed = runs.find((r) => r.id === runId);
  if (listed?.record || !listed) return;
  await saveRunRecord(db, {
    id: runId,
    graphName: listed.graphName,
    createdAt: listed.info?.createdAt,
    status: listed.info?.status,
    iteration: listed.info?.iteration,
    totalIterations: listed.info?.totalIterations,
    envSteps: listed.info?.envSteps,
    backend: listed.info?.backend,
  });
}

/** The main process's runs and this window's records, newest first; the shown run with its live state. */
export function mergeRuns(infos: RunInfo[], records: RunRecord[], view: RunView | null): ListedRun[] {
  const byId = new Map<string, ListedRun>();
  for (const record of records) {
    byId.set(record.id, {
      id: record.id,
      name: record.name,
      graphName: record.graphName,
      notes: record.notes,
      record,
    });
  }
  for (const info of infos) {
    const existing = byId.get(info.id);
    const live =
      view && view.runId === info.id && view.status !== 'connecting'
        ? { ...info, status: view.status, iteration: view.iteration }
        : info;
    byId.set(info.id, {
      id: info.id,
      name: existing?.name ?? info.graphName,
      graphName: info.graphName,
      notes: existing?.notes ?? '',
      record: existing?.record,
      info: live,
    });
  }
  const created = (r: ListedRun) => r.info?.createdAt ?? r.record?.createdAt ?? '';
  return [...byId.values()].sort((a, b) => created(b).localeCompare(created(a)) || b.id.localeCompare(a.id));
}
