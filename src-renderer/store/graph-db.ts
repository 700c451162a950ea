/**
 * The renderer's graph store (Dexie over IndexedDB, database 'agent-rl-studio'): the graphs with their
 * current content (autosaved), a version history per graph, and a few settings (which graph was open).
 * Deleting a graph only marks it, so that Undo can bring it back; marked graphs are purged a day later.
 */
import { Dexie, type EntityTable } from 'dexie';
import type { GraphFile } from '../../src-main/api/studio-api.ts';

export interface StoredGraph {
  id: string;
  name: string;
  graph: GraphFile;
  createdAt: number;
  updatedAt: number;
  /** Set when deleted; cleared by Undo. */
  deletedAt?: number;
}

export interface StoredVersion {
  id?: number;
  graphId: string;
  savedAt: number;
  /** Why it was kept: 'created', 'autosave', 'saved by you', 'before restore'... */
  reason: string;
  graph: GraphFile;
  nodeCount: number;
}

interface Setting {
  key: string;
  value: unknown;
}

export const DATABASE_NAME = 'agent-rl-studio';
/** An autosave also keeps a version when the newest version is older than this. */
export const AUTOSAVE_VERSION_INTERVAL_MS = 5 * 60_000;
export const VERSIONS_PER_GRAPH = 100;
const PURGE_DELETED_AFTER_MS = 24 * 3600_000;

/** A write refused by the browser for lack of space, said in words a user can act on. */
export class StorageFullError extends Error {
  constructor(cause: unknown) {
    super(
      'The browser storage for Agent RL Studio is full, so this change was not saved. Delete graphs or old versions you no longer need, or save the graph to a file.',
      { cause },
    );
    this.name = 'StorageFullError';
  }
}

function isQuotaError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const name = (e as { name?: string }).name;
    if (name === 'QuotaExceededError' || name === 'QuotaExceeded') return true;
    e = (e as { inner?: unknown; cause?: unknown }).inner ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

class StudioDatabase extends Dexie {
  graphs!: EntityTable<StoredGraph, 'id'>;
  versions!: EntityTable<StoredVersion, 'id'>;
  settings!: EntityTable<Setting, 'key'>;

  constructor(name: string, options?: ConstructorParameters<typeof Dexie>[1]) {
    super(name, options);
    this.version(1).stores({
      graphs: 'id, updatedAt, deletedAt',
      versions: '++id, graphId, [graphId+savedAt]',
      settings: 'key',
    });
  }
}

const newId = (): string =>
  typeof crypto !== 'undefined' && 'randomUUID' in crypto
    ? crypto.randomUUID()
    : `g${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;

export class GraphStore {
  readonly db: StudioDatabase;
  private readonly now: () => number;

  constructor(
    options: { name?: string; dexie?: ConstructorParameters<typeof Dexie>[1]; now?: () => number } = {},
  ) {
    this.db = new StudioDatabase(options.name ?? DATABASE_NAME, options.dexie);
    this.now = options.now ?? Date.now;
  }

  close(): void {
    this.db.close();
  }

  /** Every write goes through here, so a full disk is reported as such. */
  private async write<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (isQuotaError(error)) throw new StorageFullError(error);
      throw error;
    }
  }

  async list(): Promise<StoredGraph[]> {
    const all = await this.db.graphs.orderBy('updatedAt').reverse().toArray();
    return all.filter((g) => g.deletedAt === undefined);
  }

  get(id: string): Promise<StoredGraph | undefined> {
    return this.db.graphs.get(id);
  }

  async create(graph: GraphFile, reason = 'created'): Promise<StoredGraph> {
    const at = this.now();
    const stored: StoredGraph = { id: newId(), name: graph.name, graph, createdAt: at, updatedAt: at };
    await this.write(() =>
      this.db.transaction('rw', this.db.graphs, this.db.versions, async () => {
        await this.db.graphs.add(stored);
        await this.db.versions.add(versionOf(stored.id, graph, at, reason));
      }),
    );
    return stored;
  }

  /** Autosave: the current content, plus a version when the newest one is old. */
  async save(id: string, graph: GraphFile): Promise<void> {
    const at = this.now();
    await this.write(() =>
      this.db.transaction('rw', this.db.graphs, this.db.versions, async () => {
        const updated = await this.db.graphs.update(id, { graph, name: graph.name, updatedAt: at });
        if (updated === 0)
          throw new Error(`The graph '${graph.name}' is no longer in this browser's storage.`);
        const newest = await this.newestVersion(id);
        if (!newest || at - newest.savedAt >= AUTOSAVE_VERSION_INTERVAL_MS) {
          await this.db.versions.add(versionOf(id, graph, at, 'autosave'));
          await this.trimVersions(id);
        }
      }),
    );
  }

  /** Keep the graph's present content as a version (the user asked for it, or before a restore). */
  async keepVersion(id: string, graph: GraphFile, reason: string): Promise<void> {
    await this.write(() =>
      this.db.transaction('rw', this.db.graphs, this.db.versions, async () => {
        await this.db.graphs.update(id, { graph, name: graph.name, updatedAt: this.now() });
        await this.db.versions.add(versionOf(id, graph, this.now(), reason));
        await this.trimVersions(id);
      }),
    );
  }

  private async newestVersion(graphId: string): Promise<StoredVersion | undefined> {
    return this.db.versions
      .where('[graphId+savedAt]')
      .between([graphId, Dexie.minKey], [graphId, Dexie.maxKey])
      .last();
  }

  private async trimVersions(graphId: string): Promise<void> {
    const keys = await this.db.versions
      .where('[graphId+savedAt]')
      .between([graphId, Dexie.minKey], [graphId, Dexie.maxKey])
      .primaryKeys();
    if (keys.length > VERSIONS_PER_GRAPH)
      await this.db.versions.bulkDelete(keys.slice(0, keys.length - VERSIONS_PER_GRAPH));
  }

  /** Newest first. */
  async versions(graphId: string): Promise<StoredVersion[]> {
    const list = await this.db.versions
      .where('[graphId+savedAt]')
      .between([graphId, Dexie.minKey], [graphId, Dexie.maxKey])
      .toArray();
    return list.reverse();
  }

  async version(versionId: number): Promise<StoredVersion | undefined> {
    return this.db.versions.get(versionId);
  }

  async rename(id: string, name: string): Promise<StoredGraph> {
    const stored = await this.get(id);
    if (!stored) throw new Error('This graph is no longer in storage.');
    const graph = { ...stored.graph, name };
    await this.write(() => this.db.graphs.update(id, { name, graph, updatedAt: this.now() }));
    return { ...stored, name, graph };
  }

  async duplicate(id: string): Promise<StoredGraph> {
    const stored = await this.get(id);
    if (!stored) throw new Error('This graph is no longer in storage.');
    return this.create({ ...structuredClone(stored.graph), name: `${stored.name} (copy)` }, 'duplicated');
  }

  /** Marks the graph deleted; `undelete` brings it back. */
  async delete(id: string): Promise<void> {
    await this.write(() => this.db.graphs.update(id, { deletedAt: this.now() }));
  }

  async undelete(id: string): Promise<void> {
    const stored = await this.get(id);
    if (!stored) throw new Error('This graph was purged and cannot be brought back.');
    const { deletedAt: _deleted, ...rest } = stored;
    await this.write(() => this.db.graphs.put(rest));
  }

  /** Remove graphs (and their versions) deleted more than a day ago. */
  async purgeDeleted(): Promise<number> {
    const cutoff = this.now() - PURGE_DELETED_AFTER_MS;
    const old = (await this.db.graphs.where('deletedAt').below(cutoff).toArray()).map((g) => g.id);
    if (old.length === 0) return 0;
    await this.write(() =>
      this.db.transaction('rw', this.db.graphs, this.db.versions, async () => {
        await this.db.graphs.bulkDelete(old);
        await this.db.versions.where('graphId').anyOf(old).delete();
      }),
    );
    return old.length;
  }

  async getSetting<T>(key: string): Promise<T | undefined> {
    return (await this.db.settings.get(key))?.value as T | undefined;
  }

  async setSetting(key: string, value: unknown): Promise<void> {
    await this.write(() => this.db.settings.put({ key, value }));
  }
}

function versionOf(graphId: string, graph: GraphFile, savedAt: number, reason: string): StoredVersion {
  return { graphId, savedAt, reason, graph, nodeCount: graph.nodes.length };
}
