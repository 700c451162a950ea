/** What a run tells the outside world. Plain JSON so it crosses threads, IPC and WebSockets unchanged. */
export type RunStatus = 'starting' | 'running' | 'paused' | 'stopped' | 'finished' | 'failed';

/** One line of metrics.jsonl, the same in the app, the CLI and exported code. */
export interface MetricsRecord {
  iteration: number;
  envSteps: number;
  seconds: number;
  metrics: Record<string, number>;
}

export type RunEvent =
  | { type: 'status'; status: RunStatus; iteration: number; backend?: string; message?: string }
  | { type: 'metrics'; record: MetricsRecord }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; nodeId?: string }
  | { type: 'error'; message: string; nodeId?: string; field?: string }
  | { type: 'checkpoint'; iteration: number; path: string };
