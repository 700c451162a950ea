/** A problem found in a graph, placed on the node, port or parameter that causes it. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  message: string;
  /** Node the problem belongs to; absent for graph-wide problems. */
  nodeId?: string;
  /** Port name, when the problem is a wire or a required input. */
  port?: string;
  /** Parameter path, e.g. "lr" or "layers.0"; when the problem is a parameter value. */
  param?: string;
  /** Edge index in `edges`, when the problem is a wire. */
  edge?: number;
  /** Stable machine-readable code, e.g. "unknown-node-type". */
  code: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.nodeId ? `${d.nodeId}${d.param ? `.${d.param}` : d.port ? `.${d.port}` : ''}` : 'graph';
  return `${where}: ${d.message}`;
}

export const hasErrors = (ds: readonly Diagnostic[]): boolean => ds.some((d) => d.severity === 'error');

/** An error a user can act on, carrying the diagnostics that explain it. */
export class GraphError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'GraphError';
  }
}
