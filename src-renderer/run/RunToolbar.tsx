/**
 * Run controls for the window's toolbar: Run (compiles first), Pause, Resume, Step one iteration, Stop,
 * with keyboard shortcuts, and the run's state as a word with iteration, elapsed time, steps/s and backend.
 */
import { useEffect } from 'react';
import { BACKEND_NAMES, type BackendName } from '../../src-main/engine/graph/types.ts';
import type { RunViewStatus } from '../run-state.ts';

const BACKEND_LABELS: Record<BackendName, string> = {
  auto: 'auto (best available)',
  tensorflow: 'native TensorFlow',
  webgpu: 'WebGPU (GPU)',
  wasm: 'WebAssembly',
  cpu: 'JavaScript CPU',
};

import { useRun } from './run-context.tsx';

/** Shortcuts (Alt+letter: free in browsers and in the desktop app, and they work inside inputs). */
export const RUN_SHORTCUTS = {
  run: { key: 'r', label: 'Alt+R' },
  pause: { key: 'p', label: 'Alt+P' },
  resume: { key: 'e', label: 'Alt+E' },
  step: { key: 's', label: 'Alt+S' },
  stop: { key: 'x', label: 'Alt+X' },
} as const;

/** The word shown for a state: the engine's 'starting' is the worker compiling and building the graph. */
export function stateWord(status: RunViewStatus | undefined, compiling: boolean): string {
  if (compiling) return 'compiling';
  if (!status) return 'idle';
  return status === 'starting' ? 'compiling' : status;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/**
 * `blockedReason`: why the graph cannot run (its first compile error); Run is then disabled and says why
 * (tooltip and `aria-describedby` pointing at the window's explanation line).
 */
export function RunToolbar({ blockedReason }: { blockedReason?: string } = {}) {
  const run = useRun();
  const { view, graph, compiling } = run;
  const status = view?.status;
  const active =
    status === 'starting' || status === 'running' || status === 'paused' || status === 'connecting';
  const canRun = Boolean(graph) && !active && !compiling && !blockedReason;
  const canPause = status === 'running' || status === 'starting';
  const canResume = status === 'paused';
  const canStep = status === 'paused';
  const canStop = active && status !== 'connecting';

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (!event.altKey || event.ctrlKey || event.metaKey) return;
      const key = event.key.toLowerCase();
      const action =
        key === RUN_SHORTCUTS.run.key && canRun
          ? run.start
          : key === RUN_SHORTCUTS.pause.key && canPause
            ? run.pause
            : key === RUN_SHORTCUTS.resume.key && canResume
              ? run.resume
              : key === RUN_SHORTCUTS.step.key && canStep
                ? run.step
                : key === RUN_SHORTCUTS.stop.key && canStop
                  ? run.stop
                  : undefined;
      if (!action) return;
      event.preventDefault();
      void action();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [run, canRun, canPause, canResume, canStep, canStop]);

  const word = stateWord(status, compiling);
  const rate = view?.stepsPerSecond;

  return (
    <div className="run-toolbar" role="toolbar" aria-label="Run controls">
      <label className="iterations">
        Iterations
        <input
          type="number"
          min={1}
          inputMode="numeric"
          value={run.iterations}
          placeholder={graph ? String(graph.run.iterations) : ''}
          onChange={(e) => run.setIterations(e.target.value)}
        />
      </label>
      <label className="backend-choice">
        Backend
        <select
          value={run.backend}
          onChange={(e) => run.setBackend(e.target.value as BackendName | 'graph')}
          disabled={active}
        >
          <option value="graph">{graph ? `graph's (${graph.run.backend})` : "graph's"}</option>
          {BACKEND_NAMES.map((name) => (
            <option key={name} value={name}>
              {BACKEND_LABELS[name]}
            </option>
          ))}
        </select>
      </label>
      <button
        type="button"
        onClick={() => void run.start()}
        disabled={!canRun}
        aria-keyshortcuts="Alt+R"
        aria-describedby={blockedReason ? 'run-blocked-reason' : undefined}
        title={blockedReason ? `Run is disabled: ${blockedReason}` : 'Run (Alt+R)'}
      >
        Run
      </button>
      <button
        type="button"
        onClick={() => void run.pause()}
        disabled={!canPause}
        aria-keyshortcuts="Alt+P"
        title="Pause (Alt+P)"
      >
        Pause
      </button>
      <button
        type="button"
        onClick={() => void run.resume()}
        disabled={!canResume}
        aria-keyshortcuts="Alt+E"
        title="Resume (Alt+E)"
      >
        Resume
      </button>
      <button
        type="button"
        onClick={() => void run.step()}
        disabled={!canStep}
        aria-keyshortcuts="Alt+S"
        title="Step one iteration (Alt+S)"
      >
        Step
      </button>
      <button
        type="button"
        onClick={() => void run.stop()}
        disabled={!canStop}
        aria-keyshortcuts="Alt+X"
        title="Stop and keep a checkpoint (Alt+X)"
      >
        Stop
      </button>
      <span className="run-readouts">
        <output aria-label="run state" className={`state ${word}`}>
          {word}
        </output>
        <span className="readout">
          it{' '}
          <output aria-label="iteration">{view ? `${view.iteration} / ${view.totalIterations}` : '–'}</output>
        </span>
        <span className="readout">
          <output aria-label="elapsed time">{view ? formatDuration(view.elapsedSeconds) : '–'}</output>
        </span>
        <span className="readout">
          <output aria-label="steps per second">
            {rate === undefined ? '–' : Math.round(rate).toLocaleString('en-US')}
          </output>{' '}
          steps/s
        </span>
        <span className="readout">
          <output aria-label="backend">{view?.backend ?? '–'}</output>
        </span>
      </span>
    </div>
  );
}
