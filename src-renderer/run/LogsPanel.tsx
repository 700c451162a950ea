/** Node logs, warnings, NaN pauses and findings; clicking an entry shows its node on the canvas. */
import { useState } from 'react';
import { focusNode } from '../live-state.ts';
import type { LogEntry, RunView } from '../run-state.ts';

type Filter = 'all' | 'problems' | 'findings';

const matches = (entry: LogEntry, filter: Filter) =>
  filter === 'all' ||
  (filter === 'findings' ? entry.kind === 'finding' : entry.level !== 'info' || entry.kind === 'pause');

function describe(entry: LogEntry): string {
  if (entry.kind === 'finding' && entry.finding) {
    const evidence = Object.entries(entry.finding.evidence)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return `${entry.finding.severity}: ${entry.message}${evidence ? ` (${evidence})` : ''}`;
  }
  if (entry.kind === 'error' && /non-finite|NaN|Infinity/i.test(entry.message))
    return `NaN pause: ${entry.message}`;
  return `${entry.level}: ${entry.message}`;
}

export function LogsPanel({ view }: { view: RunView }) {
  const [filter, setFilter] = useState<Filter>('all');
  const shown = view.entries
    .filter((e) => matches(e, filter))
    .slice(-200)
    .reverse();
  return (
    <div className="logs-panel">
      <div className="logs-filter" role="radiogroup" aria-label="Show">
        {(['all', 'problems', 'findings'] as const).map((f) => (
          <label key={f}>
            <input type="radio" name="log-filter" checked={filter === f} onChange={() => setFilter(f)} />
            {f === 'all' ? 'Everything' : f === 'problems' ? 'Warnings and errors' : 'Findings'}
          </label>
        ))}
        <span className="hint">{view.findings.length} findings</span>
      </div>
      {shown.length === 0 ? (
        <p className="hint">Nothing to show.</p>
      ) : (
        <ul className="log-entries" aria-label="log entries">
          {shown.map((entry) => (
            <li key={entry.seq} className={`log-entry ${entry.kind} ${entry.level}`}>
              <span className="log-iteration">it {entry.iteration}</span>
              {entry.nodeId ? (
                <button
                  type="button"
                  className="link"
                  onClick={() => focusNode(entry.nodeId!, entry.field)}
                  aria-label={`Show node ${entry.nodeId}: ${entry.message}`}
                >
                  {entry.nodeId}
                  {entry.field ? `.${entry.field}` : ''}
                </button>
              ) : (
                <span className="log-node">run</span>
              )}
              <span className="log-message">{describe(entry)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
