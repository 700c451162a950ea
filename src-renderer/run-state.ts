/** What the run dock shows, folded from a run's event stream (history first, then live events). */
import type { RunEvent, RunStatus } from '../src-main/api/studio-api.ts';

export interface RunView {
  runId: string;
  graphName: string;
  status: RunStatus | 'connecting';
  /** Completed iterations. */
  iteration: number;
  totalIterations: number;
  backend?: string;
  /** Latest value of every metric. */
  metrics: Record<string, number>;
  /** Metric records received. */
  metricPoints: number;
  envSteps: number;
  lastCheckpoint?: number;
  /** The latest error or status message worth showing. */
  message?: string;
  log: string[];
}

const LOG_LINES = 50;

export function newRunView(runId: string, graphName: string, totalIterations: number): RunView {
  return {
    runId,
    graphName,
    status: 'connecting',
    iteration: 0,
    totalIterations,
    metrics: {},
    metricPoints: 0,
    envSteps: 0,
    log: [],
  };
}

export function applyRunEvent(view: RunView, event: RunEvent): RunView {
  switch (event.type) {
    case 'status':
      return {
        ...view,
        status: event.status,
        iteration: event.iteration,
        backend: event.backend ?? view.backend,
        message:
          event.status === 'failed'
            ? (event.message ?? view.message)
            : event.status === 'starting'
              ? undefined
              : view.message,
      };
    case 'metrics':
      return {
        ...view,
        iteration: event.record.iteration + 1,
        envSteps: event.record.envSteps,
        metrics: { ...view.metrics, ...event.record.metrics },
        metricPoints: view.metricPoints + 1,
      };
    case 'checkpoint':
      return { ...view, lastCheckpoint: event.iteration };
    case 'error': {
      const where = event.nodeId && !event.message.startsWith(event.nodeId) ? `${event.nodeId}: ` : '';
      return {
        ...view,
        message: `${where}${event.message}`,
        log: [...view.log, `error: ${where}${event.message}`].slice(-LOG_LINES),
      };
    }
    case 'log':
      return { ...view, log: [...view.log, `${event.level}: ${event.message}`].slice(-LOG_LINES) };
    default:
      return view;
  }
}

export const isActiveStatus = (status: RunView['status'] | undefined): boolean =>
  status === 'starting' || status === 'running' || status === 'paused' || status === 'connecting';
