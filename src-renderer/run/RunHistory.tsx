/**
 * The runs of the loaded graph (or all runs): rename, annotate, delete, show, resume from checkpoint,
 * and overlay two or more on one chart to compare them.
 */
import { useEffect, useMemo, useState } from 'react';
import { LineChart } from './LineChart.tsx';
import { DRAW_BUCKETS } from './MetricCharts.tsx';
import { decimate, MetricSeries, smoothSeries } from './metric-series.ts';
import { formatDuration } from './RunToolbar.tsx';
import { type ListedRun, useRun } from './run-context.tsx';
import { loadSeries } from './run-db.ts';

const COMPARE_COLORS = ['#1d4ed8', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

function headline(metrics: Record<string, number> | undefined): string | undefined {
  if (!metrics) return undefined;
  const name =
    Object.keys(metrics).find((n) => n.endsWith('episode_return_mean')) ??
    Object.keys(metrics).find((n) => /return|success|reward/.test(n));
  return name ? `${name} ${Number(metrics[name]!.toPrecision(4))}` : undefined;
}

function RunRow({
  listed,
  comparing,
  onCompare,
}: {
  listed: ListedRun;
  comparing: boolean;
  onCompare: (on: boolean) => void;
}) {
  const run = useRun();
  const [name, setName] = useState(listed.name);
  const [notes, setNotes] = useState(listed.notes);
  const [confirming, setConfirming] = useState(false);
  useEffect(() => setName(listed.name), [listed.name]);
  useEffect(() => setNotes(listed.notes), [listed.notes]);
  const info = listed.info;
  const record = listed.record;
  const status = info?.status ?? record?.status ?? 'stopped';
  const iteration = info?.iteration ?? record?.iteration ?? 0;
  const total = info?.totalIterations ?? record?.totalIterations ?? 0;
  const shown = run.view?.runId === listed.id;
  const figure = headline(shown ? { ...run.view!.metrics } : record?.finalMetrics);
  return (
    <li className={`run-row${shown ? ' shown' : ''}`} aria-label={`run ${listed.name}`}>
      <div className="run-row-main">
        <label className="compare-toggle">
          <input
            type="checkbox"
            checked={comparing}
            onChange={(e) => onCompare(e.target.checked)}
            aria-label={`Compare run ${listed.id}`}
          />
        </label>
        <input
          className="run-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          onBlur={() => name !== listed.name && void run.rename(listed.id, name)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') (e.target as HTMLInputElement).blur();
          }}
          aria-label={`Name of run ${listed.id}`}
        />
        <span className={`state ${status}`}>{status}</span>
        <span>
          {iteration}/{total}
        </span>
        <button type="button" onClick={() => void run.show(listed.id)} aria-label={`Show run ${listed.id}`}>
          Show
        </button>
        {info?.resumable && (
          <button
            type="button"
            onClick={() => void run.resumeFromCheckpoint(listed.id)}
            aria-label={`Resume run ${listed.id} from checkpoint`}
          >
            Resume from checkpoint
          </button>
        )}
        {confirming ? (
          <>
            <button
              type="button"
              onClick={() => void run.remove(listed.id)}
              aria-label={`Confirm delete run ${listed.id}`}
            >
              Delete for good
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <button
            type="button"
            onClick={() => setConfirming(true)}
            disabled={Boolean(info?.active)}
            aria-label={`Delete run ${listed.id}`}
          >
            Delete
          </button>
        )}
      </div>
      <p className="hint">
        {[
          info?.backend ?? record?.backend,
          record?.seed !== undefined ? `seed ${record.seed}` : undefined,
          record?.durationSeconds ? formatDuration(record.durationSeconds) : undefined,
          figure,
          info?.error,
        ]
          .filter(Boolean)
          .join(' · ')}
      </p>
      <textarea
        className="run-notes"
        value={notes}
        rows={1}
        placeholder="Notes"
        onChange={(e) => setNotes(e.target.value)}
        onBlur={() => notes !== listed.notes && void run.annotate(listed.id, notes)}
        aria-label={`Notes on run ${listed.id}`}
      />
    </li>
  );
}

/** The chosen runs' values of one metric on one chart. */
function Comparison({ runs }: { runs: ListedRun[] }) {
  const run = useRun();
  const [loaded, setLoaded] = useState<Map<string, MetricSeries>>(new Map());
  const [metric, setMetric] = useState<string>('');
  const [smoothing, setSmoothing] = useState(0.6);
  const ids = runs.map((r) => r.id).join(',');
  const liveId = run.view?.runId;
  const liveVersion = run.view?.seriesVersion ?? 0;

  // biome-ignore lint/correctness/useExhaustiveDependencies: ids stands for runs.
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const next = new Map<string, MetricSeries>();
      for (const r of runs) {
        next.set(r.id, r.id === liveId && run.view ? run.view.series : await loadSeries(run.db, r.id));
      }
      if (!cancelled) setLoaded(next);
    })();
    return () => {
      cancelled = true;
    };
  }, [ids, liveId, run.db]);

  const names = useMemo(() => {
    const all = new Set<string>();
    for (const s of loaded.values()) for (const n of s.names) all.add(n);
    return [...all].sort();
  }, [loaded]);
  const chosen =
    metric && names.includes(metric)
      ? metric
      : (names.find((n) => n.endsWith('episode_return_mean')) ?? names[0] ?? '');
  const labels = runs.map((r) => r.name);

  return (
    <section className="comparison" aria-label="comparison">
      <div className="chart-toolbar">
        <label>
          Metric
          <select value={chosen} onChange={(e) => setMetric(e.target.value)}>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Smoothing
          <input
            type="range"
            min={0}
            max={0.99}
            step={0.01}
            value={smoothing}
            onChange={(e) => setSmoothing(Number(e.target.value))}
          />
        </label>
      </div>
      <ul className="compared-runs" aria-label="compared runs">
        {runs.map((r, i) => (
          <li key={r.id}>
            <span className="swatch" style={{ background: COMPARE_COLORS[i % COMPARE_COLORS.length] }} />
            {r.name} ({loaded.get(r.id)?.length ?? 0} points)
          </li>
        ))}
      </ul>
      {chosen && (
        <LineChart
          title={`compare ${chosen}`}
          seriesLabels={labels}
          colors={COMPARE_COLORS}
          logScale={false}
          version={liveVersion + loaded.size * 1e9 + Math.round(smoothing * 100) * 1e7}
          getLines={(from, to) =>
            runs.map((r, i) => {
              const series = loaded.get(r.id) ?? new MetricSeries();
              const values = smoothSeries(series.columns.get(chosen) ?? [], smoothing);
              return {
                label: r.name,
                color: COMPARE_COLORS[i % COMPARE_COLORS.length]!,
                ...decimate(series.iterations, values, DRAW_BUCKETS, from, to),
              };
            })
          }
        />
      )}
    </section>
  );
}

export function RunHistory() {
  const run = useRun();
  const [allGraphs, setAllGraphs] = useState(false);
  const [compare, setCompare] = useState<ReadonlySet<string>>(new Set());
  const graphName = run.graph?.name;
  const listed = run.runs.filter((r) => allGraphs || !graphName || r.graphName === graphName);
  const compared = run.runs.filter((r) => compare.has(r.id));

  return (
    <div className="run-history">
      <div className="history-toolbar">
        {graphName && (
          <label>
            <input type="checkbox" checked={allGraphs} onChange={(e) => setAllGraphs(e.target.checked)} />
            Runs of every graph
          </label>
        )}
        <span className="hint">
          {listed.length} run{listed.length === 1 ? '' : 's'}
          {graphName && !allGraphs ? ` of ${graphName}` : ''}; tick two or more to compare.
        </span>
      </div>
      {compared.length >= 2 && <Comparison runs={compared} />}
      {listed.length === 0 ? (
        <p className="hint">No runs yet.</p>
      ) : (
        <ul aria-label="runs" className="run-list">
          {listed.slice(0, 50).map((r) => (
            <RunRow
              key={r.id}
              listed={r}
              comparing={compare.has(r.id)}
              onCompare={(on) =>
                setCompare((current) => {
                  const next = new Set(current);
                  if (on) next.add(r.id);
                  else next.delete(r.id);
                  return next;
                })
              }
            />
          ))}
        </ul>
      )}
    </div>
  );
}
