/**
 * What node components need from the editor without re-rendering on every edit: lookups through refs
 * (stable functions) rather than the graph itself.
 */
import { createContext } from 'react';
import type { CatalogNode } from '../../src-main/api/studio-api.ts';
import type { PortSpec, PortTypeInfo } from '../../src-main/engine/ports.ts';

export interface EditorLookups {
  /** The catalog entry of a node on the canvas. */
  typeOfNode(nodeId: string): CatalogNode | undefined;
  portTypes: Record<string, PortTypeInfo>;
  /** A frame's title was edited on the canvas. */
  renameFrame(frameId: string, title: string): void;
}

export const EditorLookupsContext = createContext<EditorLookups>({
  typeOfNode: () => undefined,
  portTypes: {},
  renameFrame: () => {},
});

export const portSpec = (
  type: CatalogNode | undefined,
  side: 'source' | 'target',
  name: string,
): PortSpec | undefined => (side === 'source' ? type?.outputs : type?.inputs)?.find((p) => p.name === name);
