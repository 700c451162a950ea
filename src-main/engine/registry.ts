import { z } from 'zod';
import type { AnyNodeDefinition, Family } from './node-api.ts';
import { PORT_TYPES, type PortSpec, type PortTypeInfo } from './ports.ts';

/** The set of node types a run may use. Duplicate types are a programming error. */
export class NodeRegistry {
  private readonly byType = new Map<string, AnyNodeDefinition>();

  constructor(definitions: readonly AnyNodeDefinition[] = []) {
    for (const definition of definitions) this.register(definition);
  }

  register(definition: AnyNodeDefinition): void {
    if (this.byType.has(definition.type)) {
      throw new Error(`Node type '${definition.type}' is registered twice`);
    }
    for (const port of [...definition.inputs, ...definition.outputs]) {
      // Own keys only: 'constructor' or 'toString' must not pass as a port type.
      if (!Object.hasOwn(PORT_TYPES, port.type)) {
        throw new Error(
          `Node type '${definition.type}', port '${port.name}': unknown port type '${port.type}'`,
        );
      }
    }
    this.byType.set(definition.type, definition);
  }

  get(type: string): AnyNodeDefinition | undefined {
    return this.byType.get(type);
  }

  list(): AnyNodeDefinition[] {
    return [...this.byType.values()];
  }
}

/** A node type as plain JSON: what the renderer and the code exporter know of it. */
export interface CatalogNode {
  type: string;
  family: Family;
  title: string;
  summary: string;
  doc: string;
  version: number;
  inputs: PortSpec[];
  outputs: PortSpec[];
  /** JSON Schema (draft 2020-12) of the parameters. */
  paramsSchema: Record<string, unknown>;
  defaults: Record<string, unknown>;
  keyParams: string[];
  trains: boolean;
}

export interface Catalog {
  portTypes: Record<string, PortTypeInfo>;
  nodes: CatalogNode[];
}

export function defaultParams(definition: AnyNodeDefinition): Record<string, unknown> {
  return definition.params.parse({}) as Record<string, unknown>;
}

export function buildCatalog(registry: NodeRegistry): Catalog {
  return {
    portTypes: PORT_TYPES,
    nodes: registry.list().map((d) => ({
      type: d.type,
      family: d.family,
      title: d.title,
      summary: d.summary,
      doc: d.doc,
      version: d.version,
      inputs: d.inputs,
      outputs: d.outputs,
      paramsSchema: z.toJSONSchema(d.params, { io: 'input' }) as Record<string, unknown>,
      defaults: defaultParams(d),
      keyParams: d.keyParams ?? [],
      trains: d.trains ?? false,
    })),
  };
}
