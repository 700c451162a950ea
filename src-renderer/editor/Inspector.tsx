/**
 * The inspector: the selected node's label, parameters (a form from its JSON Schema), inputs (wires can
 * be made from the keyboard here), its diagnostics and its doc with the math and the paper.
 */
import { useMemo } from 'react';
import type { CatalogNode, Diagnostic, GraphFile } from '../../src-main/api/studio-api.ts';
import { wireMismatch } from '../../src-main/engine/ports.ts';
import { type JsonSchema, SchemaField } from './schema-form.tsx';

type GraphNode = GraphFile['nodes'][number];

export interface InspectorProps {
  graph: GraphFile;
  node: GraphNode;
  type: CatalogNode | undefined;
  types: ReadonlyMap<string, CatalogNode>;
  diagnostics: readonly Diagnostic[];
  onParam(nodeId: string, path: string, value: unknown): void;
  onLabel(nodeId: string, label: string): void;
  onConnect(from: { node: string; port: string }, to: { node: string; port: string }): void;
  onDisconnect(edgeIds: string[]): void;
  edgeIdOf(edge: GraphFile['edges'][number]): string;
}

export function Inspector(props: InspectorProps) {
  const { node, type, types, diagnostics, onParam, onLabel } = props;
  const serverErrors = useMemo(() => {
    const byPath = new Map<string, string>();
    for (const d of diagnostics)
      if (d.param && d.severity === 'error' && !byPath.has(d.param)) byPath.set(d.param, d.message);
    return byPath;
  }, [diagnostics]);
  const properties = ((type?.paramsSchema as JsonSchema | undefined)?.properties ?? {}) as Record<
    string,
    JsonSchema
  >;

  return (
    <section className="inspector" aria-labelledby="inspector-title">
      <h2 id="inspector-title">
        {node.label ?? node.id} <span className="hint">{type?.title ?? node.type}</span>
      </h2>
      <div className="param">
        <label htmlFor="node-label">Label</label>
        <input
          id="node-label"
          type="text"
          value={node.label ?? ''}
          placeholder={node.id}
          onChange={(e) => onLabel(node.id, e.target.value)}
        />
        <div className="param-help">
          id <code>{node.id}</code> · type <code>{node.type}</code> v{node.typeVersion}
        </div>
      </div>

      {diagnostics.length > 0 && (
        <ul className="diagnostics" aria-label="node diagnostics">
          {diagnostics.map((d, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: diagnostics have no identity of their own.
            <li key={i} className={d.severity}>
              {d.severity}: {d.param ? `${d.param}: ` : d.port ? `${d.port}: ` : ''}
              {d.message}
            </li>
          ))}
        </ul>
      )}

      {type ? (
        <>
          <form className="params" aria-label="Parameters" onSubmit={(e) => e.preventDefault()}>
            <h3>Parameters</h3>
            {Object.keys(properties).length === 0 && <p className="hint">This node has no parameters.</p>}
            {Object.entries(properties).map(([name, schema]) => (
              <SchemaField
                key={`${node.id}.${name}`}
                name={name}
                path={name}
                schema={schema}
                value={node.params[name]}
                serverErrors={serverErrors}
                onChange={(path, value) => onParam(node.id, path, value)}
              />
            ))}
          </form>
          {type.inputs.length > 0 && <InputsSection {...props} type={type} />}
          <section className="node-doc" aria-label="Documentation">
            <h3>About {type.title}</h3>
            <p>{type.summary}</p>
            <pre className="doc-text">{type.doc}</pre>
          </section>
        </>
      ) : (
        <p className="hint">The catalog has no node type '{node.type}'. Replace this node.</p>
      )}
      {types.size === 0 && <p className="hint">Loading the node catalog…</p>}
    </section>
  );
}

/** Inputs and what feeds them; a select per input offers the compatible outputs of the graph. */
function InputsSection({
  graph,
  node,
  type,
  types,
  onConnect,
  onDisconnect,
  edgeIdOf,
}: InspectorProps & { type: CatalogNode }) {
  return (
    <section className="node-inputs" aria-label="Inputs">
      <h3>Inputs</h3>
      {type.inputs.map((input) => {
        const wired = graph.edges.filter((e) => e.to.node === node.id && e.to.port === input.name);
        const options: Array<{ value: string; label: string }> = [];
        for (const other of graph.nodes) {
          if (other.id === node.id) continue;
          for (const output of types.get(other.type)?.outputs ?? []) {
            if (wireMismatch(output, input) === null)
              options.push({
                value: `${other.id}\u0000${output.name}`,
                label: `${other.label ?? other.id} · ${output.name}`,
              });
          }
        }
        const current = wired[0] ? `${wired[0].from.node}\u0000${wired[0].from.port}` : '';
        return (
          <div className="param" key={input.name}>
            <label htmlFor={`input-${input.name}`}>
              {input.title ?? input.name} <span className="hint">({input.type})</span>
            </label>
            <select
              id={`input-${input.name}`}
              value={input.multiple ? '' : current}
              onChange={(e) => {
                if (e.target.value === '') {
                  if (!input.multiple) onDisconnect(wired.map(edgeIdOf));
                  return;
                }
                const [from, port] = e.target.value.split('\u0000');
                onConnect({ node: from, port }, { node: node.id, port: input.name });
              }}
            >
              <option value="">{input.multiple ? 'add a wire from…' : 'not connected'}</option>
              {options.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
            {input.multiple && wired.length > 0 && (
              <div className="param-help">{wired.map((w) => `${w.from.node}.${w.from.port}`).join(', ')}</div>
            )}
          </div>
        );
      })}
    </section>
  );
}
