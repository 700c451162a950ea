/**
 * The run dock: the shown run's facts and latest metrics, then tabs for live charts, trajectories, logs
 * and findings, and run history. Mount inside a RunProvider (which also feeds the toolbar's RunToolbar).
 */
import { useState } from 'react';
import './run.css';
import { LogsPanel } from './LogsPanel.tsx';
import { MetricCharts } from './MetricCharts.tsx';
import { RunHistory } from './RunHistory.tsx';
import { useRun } from './run-context.tsx';
import { TrajectoryViewer } from './TrajectoryViewer.tsx';

export { RunToolbar } from './RunToolbar.tsx';
export { RunProvider, useRun } from './run-context.tsx';

type Tab = 'charts' | 'trajectories' | 'logs' | 'history';
const TABS: { id: Tab; label: string }[] = [
  { id: 'charts', label: 'Charts' },
  { id: 'trajectories', label: 'Trajectories' },
  { id: 'logs', label: 'Logs and findings' },
  { id: 'history', label: 'Run history' },
];

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1000 || Math.abs(value) < 0.001 ? value.toExponential(3) : value.toPrecision(4);
}

export function RunWorkspace() {
  const run = useRun();
  const { view } = run;
  const [tab, setTab] = useState<Tab>('charts');
  const metricNames = view ? Object.keys(view.metrics).sort() : [];
  const problems = view ? view.entries.filter((e) => e.level !== 'info').length : 0;

  return (
    <section className="run run-workspace" aria-labelledby="run-title">
      <h2 id="run-title">Run{view ? `: ${view.graphName}` : ''}</h2>
      <dl className="run-facts">
        <dt>Environment steps</dt>
        <dd>
          <output aria-label="environment steps">{view ? view.envSteps.toLocaleString('en-US') : '–'}</output>
        </dd>
        <dt>Metric points</dt>
        <dd>
          <output aria-label="metric points">{view?.metricPoints ?? 0}</output>
        </dd>
        <dt>Last checkpoint</dt>
        <dd>
          <output aria-label="last checkpoint">{view?.lastCheckpoint ?? '–'}</output>
        </dd>
      </dl>
      {view?.message && <p className="run-message">{view.message}</p>}
      <details className="latest-metrics" open>
        <summary>Latest metrics ({metricNames.length})</summary>
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
                <td>{formatValue(view!.metrics[name]!)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
      <div className="tabs" role="tablist" aria-label="Run views">
        {TABS.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={`run-tab-${t.id}`}
            aria-selected={tab === t.id}
            aria-controls={`run-panel-${t.id}`}
            onClick={() => setTab(t.id)}
          >
            {t.label}
            {t.id === 'logs' && problems > 0 ? ` (${problems})` : ''}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`run-panel-${tab}`} aria-labelledby={`run-tab-${tab}`} className="tab-panel">
        {tab === 'history' ? (
          <RunHistory />
        ) : !view ? (
          <p className="hint">Run the graph, or show a run from the history.</p>
        ) : tab === 'charts' ? (
          <MetricCharts view={view} />
        ) : tab === 'trajectories' ? (
          <TrajectoryViewer view={view} samples={run.stream?.state.samples ?? new Map()} />
        ) : (
          <LogsPanel view={view} />
        )}
      </div>
    </section>
  );
}
