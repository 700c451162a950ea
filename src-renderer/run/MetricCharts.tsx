/** Live charts of every metric the run's nodes publish, grouped by node, with smoothing and log scale. */
import { useCallback, useMemo, useState } from 'react';
import type { RunView } from '../run-state.ts';
import { type ChartLine, download, LineChart } from './LineChart.tsx';
import { decimate, groupByNode, type MetricSeries, seriesToCsv, smoothSeries } from './metric-series.ts';

/** Points per drawn line: min/max decimation keeps spikes while 100k points draw as a few thousand. */
export const DRAW_BUCKETS = 1000;
const RAW_COLOR = 'rgba(37, 99, 235, 0.3)';
const SMOOTH_COLOR = '#1d4ed8';

export interface ChartOptions {
  smoothing: number;
  logScale: boolean;
}

export function ChartSettings({
  options,
  onChange,
}: {
  options: ChartOptions;
  onChange: (next: ChartOptions) => void;
}) {
  return (
    <div className="chart-settings">
      <label>
        Smoothing
        <input
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={options.smoothing}
          onChange={(e) => onChange({ ...options, smoothing: Number(e.target.value) })}
        />
        <output aria-label="smoothing">{options.smoothing.toFixed(2)}</output>
      </label>
      <label>
        <input
          type="checkbox"
          checked={options.logScale}
          onChange={(e) => onChange({ ...options, logScale: e.target.checked })}
        />
        Log scale
      </label>
      <span className="hint">Drag on a chart to zoom, double-click to reset.</span>
    </div>
  );
}

/** The lines of one metric: raw (faint) and smoothed when smoothing is on. */
export function metricLines(
  series: MetricSeries,
  name: string,
  smoothing: number,
  fromX: number,
  toX: number,
) {
  const values = series.columns.get(name) ?? [];
  const raw = decimate(series.iterations, values, DRAW_BUCKETS, fromX, toX);
  if (smoothing <= 0) return [{ label: name, color: SMOOTH_COLOR, ...raw }] satisfies ChartLine[];
  const smooth = decimate(series.iterations, smoothSeries(values, smoothing), DRAW_BUCKETS, fromX, toX);
  return [
    { label: `${name} (raw)`, color: RAW_COLOR, ...raw },
    { label: name, color: SMOOTH_COLOR, ...smooth },
  ] satisfies ChartLine[];
}

export function MetricCharts({ view }: { view: RunView }) {
  const [options, setOptions] = useState<ChartOptions>({ smoothing: 0.6, logScale: false });
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(new Set());
  const { series, seriesVersion } = view;
  // Names change rarely: recompute the grouping only when a new metric appears.
  const namesKey = series.names.join('\n');
  // biome-ignore lint/correctness/useExhaustiveDependencies: namesKey stands for series.names.
  const groups = useMemo(() => groupByNode(series.names), [namesKey]);

  const exportCsv = useCallback(() => {
    download(new Blob([seriesToCsv(series)], { type: 'text/csv' }), `${view.runId}-metrics.csv`);
  }, [series, view.runId]);

  const toggle = (nodeId: string) =>
    setCollapsed((current) => {
      const next = new Set(current);
      if (next.has(nodeId)) next.delete(nodeId);
      else next.add(nodeId);
      return next;
    });

  return (
    <div className="metric-charts">
      <div className="chart-toolbar">
        <ChartSettings options={options} onChange={setOptions} />
        <span className="readout">
          <output aria-label="chart points">{view.metricPoints}</output> points
        </span>
        <button type="button" onClick={exportCsv} disabled={view.metricPoints === 0}>
          Export CSV
        </button>
      </div>
      {groups.length === 0 && <p className="hint">Charts appear with the first iteration's metrics.</p>}
      {groups.map((group) => (
        <section key={group.nodeId} className="chart-group" aria-label={`metrics of ${group.nodeId}`}>
          <h3>
            <button
              type="button"
              className="disclosure"
              aria-expanded={!collapsed.has(group.nodeId)}
              onClick={() => toggle(group.nodeId)}
            >
              {group.nodeId} <span className="hint">({group.names.length})</span>
            </button>
          </h3>
          {!collapsed.has(group.nodeId) && (
            <div className="chart-grid">
              {group.names.map((name) => (
                <LineChart
                  key={name}
                  title={name}
                  seriesLabels={options.smoothing > 0 ? [`${name} (raw)`, name] : [name]}
                  colors={options.smoothing > 0 ? [RAW_COLOR, SMOOTH_COLOR] : [SMOOTH_COLOR]}
                  getLines={(from, to) => metricLines(series, name, options.smoothing, from, to)}
                  version={seriesVersion * 1000 + Math.round(options.smoothing * 100)}
                  logScale={options.logScale}
                />
              ))}
            </div>
          )}
        </section>
      ))}
    </div>
  );
}
