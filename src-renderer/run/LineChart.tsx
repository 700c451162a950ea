/**
 * A uPlot line chart: drag to zoom, double-click to reset, hover values in the legend, log scale, and
 * PNG export. Data comes from `getLines(fromX, toX)` (decimated by the caller to the visible range), and
 * redraws go through one queue that draws one chart per task, so twenty charts of 100k points never
 * hold the main thread in one long task.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { alignRuns } from './metric-series.ts';

export interface ChartLine {
  label: string;
  color: string;
  width?: number;
  xs: readonly number[];
  ys: readonly (number | null)[];
}

/** Redraws waiting for their turn, one per macrotask. */
const redrawQueue = new Set<() => void>();
let draining = false;
function queueRedraw(redraw: () => void): void {
  redrawQueue.add(redraw);
  if (draining) return;
  draining = true;
  const next = () => {
    const [first] = redrawQueue;
    if (!first) {
      draining = false;
      return;
    }
    redrawQueue.delete(first);
    first();
    setTimeout(next, 0);
  };
  setTimeout(next, 0);
}

const HEIGHT = 150;

export function LineChart({
  title,
  seriesLabels,
  colors,
  getLines,
  version,
  logScale,
  xLabel = 'iteration',
}: {
  title: string;
  /** Fixed per chart instance (a change rebuilds the chart). */
  seriesLabels: readonly string[];
  colors: readonly string[];
  getLines: (fromX: number, toX: number) => ChartLine[];
  /** Bumped when the data changed. */
  version: number;
  logScale: boolean;
  xLabel?: string;
}) {
  const holder = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const zoom = useRef<{ min: number; max: number } | null>(null);
  const latest = useRef(getLines);
  latest.current = getLines;
  const labelsKey = seriesLabels.join('\u0000');

  const visible = useRef(true);
  const stale = useRef(false);
  const redraw = useRef(() => {});
  redraw.current = () => {
    const plot = chart.current;
    if (!plot) return;
    stale.current = false;
    const range = zoom.current;
    const lines = latest.current(
      range?.min ?? Number.NEGATIVE_INFINITY,
      range?.max ?? Number.POSITIVE_INFINITY,
    );
    const data = alignRuns(
      lines.map((line) => ({
        iterations: line.xs,
        values: logScale ? line.ys.map((y) => (y !== null && y > 0 ? y : null)) : line.ys,
      })),
    );
    plot.setData(data as uPlot.AlignedData, range === null);
    if (range) plot.setScale('x', range);
  };

  // biome-ignore lint/correctness/useExhaustiveDependencies: the chart is rebuilt only when its series or scale change.
  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    zoom.current = null;
    let cleanup: (() => void) | undefined;
    let cancelled = false;
    // Built in the redraw queue too: twenty charts appearing at once must not make one long task.
    queueRedraw(() => {
      if (!cancelled) cleanup = build(element);
    });
    return () => {
      cancelled = true;
      cleanup?.();
    };
  }, [labelsKey, logScale, title]);

  const build = (element: HTMLDivElement): (() => void) => {
    const plot = new uPlot(
      {
        title,
        width: Math.max(200, element.clientWidth),
        height: HEIGHT,
        scales: { x: { time: false }, y: logScale ? { distr: 3 } : {} },
        axes: [{ label: xLabel, size: 36 }, { size: 56 }],
        series: [
          { label: xLabel },
          ...seriesLabels.map((label, i) => ({
            label,
            stroke: colors[i % colors.length],
            width: i === seriesLabels.length - 1 ? 1.5 : 1,
            spanGaps: true,
            points: { show: false },
          })),
        ],
        cursor: { drag: { x: true, y: false } },
        hooks: {
          setSelect: [
            (self) => {
              if (self.select.width <= 0) return;
              zoom.current = {
                min: self.posToVal(self.select.left, 'x'),
                max: self.posToVal(self.select.left + self.select.width, 'x'),
              };
              queueRedraw(() => redraw.current());
            },
          ],
        },
      },
      [[], ...seriesLabels.map(() => [])] as unknown as uPlot.AlignedData,
      element,
    );
    chart.current = plot;
    const resetZoom = () => {
      zoom.current = null;
      queueRedraw(() => redraw.current());
    };
    plot.over.addEventListener('dblclick', resetZoom);
    const resize = new ResizeObserver(() => {
      const width = Math.max(200, element.clientWidth);
      if (Math.abs(width - plot.width) > 2) plot.setSize({ width, height: HEIGHT });
    });
    resize.observe(element);
    // Charts scrolled out of view skip their redraws and catch up when they come back.
    const visibility = new IntersectionObserver((entries) => {
      const nowVisible = entries.some((e) => e.isIntersecting);
      if (nowVisible && !visible.current && stale.current) queueRedraw(() => redraw.current());
      visible.current = nowVisible;
    });
    visibility.observe(element);
    redraw.current();
    return () => {
      resize.disconnect();
      visibility.disconnect();
      plot.over.removeEventListener('dblclick', resetZoom);
      plot.destroy();
      chart.current = null;
    };
  };

  // biome-ignore lint/correctness/useExhaustiveDependencies: version is the signal that the data changed.
  useEffect(() => {
    if (visible.current) queueRedraw(() => redraw.current());
    else stale.current = true;
  }, [version]);

  const exportPng = () => {
    const plot = chart.current;
    if (!plot) return;
    const source = plot.ctx.canvas;
    const canvas = document.createElement('canvas');
    const titleHeight = 28 * (source.width / plot.width);
    canvas.width = source.width;
    canvas.height = source.height + titleHeight;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#111111';
    ctx.font = `${Math.round(titleHeight * 0.55)}px sans-serif`;
    ctx.fillText(title, 8, titleHeight * 0.7);
    ctx.drawImage(source, 0, titleHeight);
    canvas.toBlob((blob) => {
      if (blob) download(blob, `${title.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'chart'}.png`);
    }, 'image/png');
  };

  return (
    <figure className="chart" aria-label={`chart ${title}`}>
      <div ref={holder} className="chart-canvas" />
      <figcaption>
        <button type="button" className="small" onClick={exportPng} aria-label="Export PNG">
          PNG
        </button>
      </figcaption>
    </figure>
  );
}

export function download(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
