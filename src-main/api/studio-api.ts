/**
 * StudioApi: everything the UI asks of the main process, as one interface. One implementation
 * (StudioService, over the engine) and two adapters carry it: Electron IPC (`window.studio`, made by the
 * preload) and the local web server (WebSocket). Everything crossing it is plain JSON.
 *
 * The renderer imports this module with `import type` only.
 */
import type { Diagnostic } from '../engine/diagnostics.ts';
import type { MetricsRecord, RunEvent, RunStatus } from '../engine/events.ts';
import type { BackendName, GraphFile, TemplateCard } from '../engine/graph/types.ts';
import type { Catalog, CatalogNode } from '../engine/registry.ts';

export type {
  BackendName,
  Catalog,
  CatalogNode,
  Diagnostic,
  GraphFile,
  MetricsRecord,
  RunEvent,
  RunStatus,
  TemplateCard,
};

/** Receives a run's events in order; `seq` is the event's index in the run's history (0, 1, 2, ...). */
export type RunEventListener = (event: RunEvent, seq: number) => void;

export interface StudioInfo {
  /** 'desktop' = Electron, 'web' = the local web server. */
  mode: 'desktop' | 'web';
  version: string;
  /** Where runs and checkpoints are kept. */
  dataDir: string;
  capabilities: {
    /** openGraphFile/saveGraphFile show native dialogs; without them the UI uploads and downloads itself. */
    fileDialogs: boolean;
    /** exportGraph is implemented. */
    export: boolean;
  };
}

export interface ValidationResult {
  /** True when there is no error (warnings may remain). */
  ok: boolean;
  diagnostics: Diagnostic[];
}

export interface TemplateSummary {
  /** File name without `.json`, e.g. `cartpole-ppo`. */
  id: string;
  /** The graph's own name. */
  name: string;
  card: TemplateCard;
  nodeCount: number;
}

export interface OpenedGraph {
  /** Handle for saving back to the same file (a path the user chose in a dialog). */
  path: string;
  fileName: string;
  /** Present when the file could be read as a graph. */
  graph?: GraphFile;
  diagnostics: Diagnostic[];
  /** Set when an older file version was migrated on load. */
  migratedFrom?: number;
}

export interface SaveGraphOptions {
  /** A path returned by openGraphFile/saveGraphFile in this session: save there without a dialog. */
  path?: string;
  /** Always ask where to save. */
  saveAs?: boolean;
}

export interface ExportedCode {
  fileName: string;
  code: string;
}

export interface StartRunRequest {
  graph: GraphFile | unknown;
  seed?: number;
  /** Override of the graph's `run.iterations`. */
  iterations?: number;
  backend?: BackendName;
}

export interface CheckpointInfo {
  /** Completed iterations stored in it (the next iteration to run on resume). */
  iteration: number;
  /** Folder name under the run's checkpoints/, e.g. `iter-0000025`. */
  name: string;
}

export interface RunInfo {
  id: string;
  graphName: string;
  status: RunStatus;
  /** Completed iterations. */
  iteration: number;
  totalIterations: number;
  envSteps: number;
  backend?: string;
  /** ISO times. */
  createdAt: string;
  updatedAt: string;
  /** A worker is running it now (starting, running or paused). */
  active: boolean;
  lastCheckpoint?: CheckpointInfo;
  /** Not active and has a checkpoint: resumeRunFromCheckpoint can continue it. */
  resumable: boolean;
  error?: string;
}

export type StudioErrorCode =
  | 'unknown-method'
  | 'bad-arguments'
  | 'bad-message'
  | 'not-found'
  | 'invalid-graph'
  | 'conflict'
  | 'unsupported'
  | 'not-available'
  | 'io'
  | 'internal';

/** An error reply: what went wrong, and for graphs, the diagnostics placed on nodes. */
export interface StudioErrorInfo {
  code: StudioErrorCode;
  message: string;
  diagnostics?: Diagnostic[];
}

export interface StudioApi {
  getInfo(): Promise<StudioInfo>;
  /** Node types, ports and parameter schemas (as ComfyUI's object_info). */
  catalog(): Promise<Catalog>;
  /** Compile a graph and return its diagnostics. */
  validate(graph: unknown): Promise<ValidationResult>;
  /**
   * Upgrade the parameters of nodes saved with an older version of their type (each type's own
   * `migrations`, which only the main process has). Nodes that cannot be upgraded come back unchanged
   * (validate says why).
   */
  migrateGraph(graph: GraphFile): Promise<GraphFile>;
  listTemplates(): Promise<TemplateSummary[]>;
  getTemplate(id: string): Promise<GraphFile>;
  /** Desktop: a native open dialog; null when cancelled. Web mode: 'unsupported' (the UI uploads). */
  openGraphFile(): Promise<OpenedGraph | null>;
  /** Desktop: a native save dialog (or the given path from this session); null when cancelled. */
  saveGraphFile(graph: GraphFile, options?: SaveGraphOptions): Promise<{ path: string } | null>;
  /** The graph as a readable TypeScript program that trains headless. */
  exportGraph(graph: GraphFile): Promise<ExportedCode>;

  startRun(request: StartRunRequest): Promise<{ runId: string }>;
  pauseRun(runId: string): Promise<void>;
  resumeRun(runId: string): Promise<void>;
  /** While paused, run `iterations` (default 1) more iterations and pause again. */
  stepRun(runId: string, iterations?: number): Promise<void>;
  /** Stop after saving a checkpoint. */
  stopRun(runId: string): Promise<void>;
  /** Continue a stopped, failed or interrupted run from its last checkpoint, under the same id. */
  resumeRunFromCheckpoint(runId: string): Promise<{ runId: string }>;
  /** Runs kept in the data folder, newest first. */
  listRuns(): Promise<RunInfo[]>;
  /** Remove a run that is not active (its folder, checkpoints and metrics). */
  deleteRun(runId: string): Promise<void>;

  /**
   * The run's history, then its live events, with no gap: the listener gets every event once, in order.
   * Returns a subscription id for `unsubscribe`.
   */
  subscribe(runId: string, listener: RunEventListener): Promise<string>;
  unsubscribe(subscriptionId: string): Promise<void>;
}

/** Methods callable with JSON arguments (all but the subscription pair, which carry a listener). */
export type StudioCallMethod = Exclude<keyof StudioApi, 'subscribe' | 'unsubscribe'>;

// --- Web mode wire protocol (WebSocket, one JSON object per message) ---

export type ClientMessage =
  | { id: number; method: StudioCallMethod; params?: unknown[] }
  /** Server replays history from `fromSeq` (default 0), then live events. */
  | { id: number; method: 'subscribe'; params: [runId: string, subscription: string, fromSeq?: number] }
  | { id: number; method: 'unsubscribe'; params: [subscription: string] };

export type ServerMessage =
  | { id: number; result: unknown }
  | { id: number | null; error: StudioErrorInfo }
  | { type: 'event'; subscription: string; seq: number; event: RunEvent }
  /** Consecutive events of one subscription, the first with `seq` (history replays and bursts). */
  | { type: 'events'; subscription: string; seq: number; events: RunEvent[] };

/** The WebSocket endpoint is `/api/ws`; HTTP calls are `POST /api/call` with `{method, params}`. */
