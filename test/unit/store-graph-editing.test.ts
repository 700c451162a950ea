/**
 * The editor's store: undo/redo, copy/paste with id remapping (also into another graph), the wire check
 * shared with the compiler, node-type migrations on load, and the Dexie graph store (autosave, versions,
 * delete with undo, quota errors) over fake-indexeddb.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { StudioService } from '../../src-main/api/studio-service.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { buildCatalog, NodeRegistry } from '../../src-main/engine/registry.ts';
import {
  AUTOSAVE_VERSION_INTERVAL_MS,
  GraphStore,
  StorageFullError,
} from '../../src-renderer/store/graph-db.ts';
import { readGraphText } from '../../src-renderer/store/graph-file.ts';
import {
  addNode,
  catalogIndex,
  checkWire,
  connect,
  copySelection,
  newGraph,
  paste,
  removeElements,
  setParam,
} from '../../src-renderer/store/graph-model.ts';
import { canRedo, canUndo, commit, redo, startHistory, undo } from '../../src-renderer/store/history.ts';
import { migrateNodeTypes, outdatedNodes } from '../../src-renderer/store/node-migrations.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const registry = createRegistry();
const catalog = buildCatalog(registry);
const types = catalogIndex(catalog);
const cartpole = (): GraphFile => loadTemplate('cartpole-ppo');

describe('undo and redo', () => {
  it('walks back and forth through edits and drops the redo branch on a new edit', () => {
    const g0 = cartpole();
    const g1 = setParam(g0, 'gae', 'gamma', 0.9);
    const g2 = setParam(g1, 'gae', 'lambda', 0.8);
    let h = commit(commit(startHistory(g0), g1, undefined, 0), g2, undefined, 10);
    expect(h.present).toBe(g2);
    h = undo(h);
    expect(h.present).toBe(g1);
    h = undo(h);
    expect(h.present).toBe(g0);
    expect(canUndo(h)).toBe(false);
    h = redo(h);
    expect(h.present).toBe(g1);
    const g3 = setParam(g1, 'ppo', 'clip', 0.1);
    h = commit(h, g3, undefined, 20);
    expect(canRedo(h)).toBe(false);
    expect(undo(h).present).toBe(g1);
  });

  it('merges quick edits of one field into one step, but not edits of different fields', () => {
    const g0 = cartpole();
    let h = startHistory(g0);
    h = commit(h, setParam(g0, 'gae', 'gamma', 0.9), 'param:gae:gamma', 1000);
    h = commit(h, setParam(h.present, 'gae', 'gamma', 0.95), 'param:gae:gamma', 1300);
    h = commit(h, setParam(h.present, 'gae', 'gamma', 0.97), 'param:gae:gamma', 1600);
    expect(h.past).toHaveLength(1);
    h = commit(h, setParam(h.present, 'gae', 'lambda', 0.5), 'param:gae:lambda', 1700);
    expect(h.past).toHaveLength(2);
    // A pause longer than the merge window starts a new step.
    h = commit(h, setParam(h.present, 'gae', 'lambda', 0.6), 'param:gae:lambda', 5000);
    expect(h.past).toHaveLength(3);
    expect(undo(undo(undo(h))).present).toBe(g0);
  });
});

describe('copy and paste', () => {
  it('remaps ids inside the same graph and keeps the wires among the copied nodes', () => {
    const g = cartpole();
    const clip = copySelection(g, ['rollout', 'gae', 'policy']);
    // Only the wires with both ends copied travel.
    expect(clip.edges.map((e) => `${e.from.node}>${e.to.node}`).sort()).toEqual([
      'policy>rollout',
      'rollout>gae',
    ]);
    const pasted = paste(g, clip, { x: 40, y: 40 });
    expect(pasted.nodeIds.sort()).toEqual(['gae_2', 'policy_2', 'rollout_2']);
    expect(pasted.graph.nodes).toHaveLength(9);
    const newEdges = pasted.graph.edges.slice(g.edges.length);
    expect(newEdges.map((e) => `${e.from.node}.${e.from.port}>${e.to.node}.${e.to.port}`).sort()).toEqual([
      'policy_2.policy>rollout_2.policy',
      'rollout_2.trajectories>gae_2.trajectories',
    ]);
    const original = g.nodes.find((n) => n.id === 'gae')!;
    const copy = pasted.graph.nodes.find((n) => n.id === 'gae_2')!;
    expect(copy.position).toEqual({ x: original.position.x + 40, y: original.position.y + 40 });
    expect(copy.params).toEqual(original.params);
    expect(copy.params).not.toBe(original.params);
    // The source graph is untouched.
    expect(g.nodes).toHaveLength(6);
  });

  it('keeps ids that are free when pasting into another graph, and renames the taken ones', () => {
    const clip = copySelection(cartpole(), ['env', 'policy']);
    const other = addNode(newGraph('Other'), types.get('env.cartpole')!, { x: 0, y: 0 }).graph;
    expect(other.nodes.map((n) => n.id)).toEqual(['cartpole']);
    const withEnv = { ...other, nodes: [...other.nodes, { ...other.nodes[0], id: 'env' }] };
    const pasted = paste(withEnv, clip, { x: 0, y: 0 });
    expect(pasted.idMap.get('env')).toBe('env_2');
    expect(pasted.idMap.get('policy')).toBe('policy');
    expect(pasted.graph.edges).toEqual([
      { from: { node: 'env_2', port: 'env' }, to: { node: 'policy', port: 'env' } },
    ]);
  });
});

describe('wires', () => {
  it('refuses with the compiler check’s reason and replaces a wire into a single input', () => {
    const g = removeElements(cartpole(), { edges: [] });
    expect(checkWire(g, types, { node: 'value', port: 'value' }, { node: 'ppo', port: 'policy' })).toBe(
      'a ValueFn output cannot feed a Policy input',
    );
    const refused = connect(g, types, { node: 'value', port: 'value' }, { node: 'ppo', port: 'policy' });
    expect(refused).toEqual({ ok: false, reason: 'a ValueFn output cannot feed a Policy input' });
    // The compiler agrees on the same wire.
    const bad = {
      ...g,
      edges: [
        ...g.edges,
        { from: { node: 'value', port: 'value' }, to: { node: 'gae', port: 'trajectories' } },
      ],
    };
    const reason = checkWire(
      g,
      types,
      { node: 'value', port: 'value' },
      { node: 'gae', port: 'trajectories' },
    );
    expect(compileGraph(bad, registry).diagnostics.some((d) => d.message.includes(reason!))).toBe(true);

    const added = addNode(g, types.get('agent.mlp-policy')!, { x: 0, y: 0 });
    const rewired = connect(
      added.graph,
      types,
      { node: added.nodeId, port: 'policy' },
      { node: 'rollout', port: 'policy' },
    );
    expect(rewired.ok).toBe(true);
    if (!rewired.ok) return;
    const intoPolicy = rewired.graph.edges.filter((e) => e.to.node === 'rollout' && e.to.port === 'policy');
    expect(intoPolicy).toEqual([
      { from: { node: added.nodeId, port: 'policy' }, to: { node: 'rollout', port: 'policy' } },
    ]);
    // A port taking several wires (PPO's policies) keeps them all.
    const both = connect(
      added.graph,
      types,
      { node: added.nodeId, port: 'policy' },
      { node: 'ppo', port: 'policy' },
    );
    expect(
      both.ok && both.graph.edges.filter((e) => e.to.node === 'ppo' && e.to.port === 'policy'),
    ).toHaveLength(2);
  });
});

describe('node-type migrations on load', () => {
  it('finds outdated nodes, upgrades them and says which; failures are reported too', async () => {
    const bumped = new Map(types);
    bumped.set('credit.gae', { ...types.get('credit.gae')!, version: 2 });
    bumped.set('trainer.ppo', { ...types.get('trainer.ppo')!, version: 3 });
    const g = cartpole();
    expect(outdatedNodes(g, bumped)).toEqual([
      { nodeId: 'gae', type: 'credit.gae', from: 1, to: 2 },
      { nodeId: 'ppo', type: 'trainer.ppo', from: 1, to: 3 },
    ]);
    // The upgrader (the main process in the app) renames gae's `lambda` to `gaeLambda` and cannot upgrade ppo.
    const outcome = await migrateNodeTypes(g, bumped, async (graph) => ({
      ...graph,
      nodes: graph.nodes.map((n) => {
        if (n.type !== 'credit.gae') return n;
        const { lambda, ...rest } = n.params;
        return { ...n, typeVersion: 2, params: { ...rest, gaeLambda: lambda } };
      }),
    }));
    expect(outcome.upgraded.map((u) => u.nodeId)).toEqual(['gae']);
    expect(outcome.failed.map((u) => u.nodeId)).toEqual(['ppo']);
    expect(outcome.graph.nodes.find((n) => n.id === 'gae')!.params).toEqual({ gamma: 0.99, gaeLambda: 0.95 });
    expect(outcome.notice).toContain('gae (credit.gae v1 → v2)');
    expect(outcome.notice).toContain('could not be upgraded: ppo (trainer.ppo v1 → v3)');
    // Nothing outdated: the same graph object, no notice.
    const same = await migrateNodeTypes(g, types, async () => {
      throw new Error('must not be called');
    });
    expect(same.graph).toBe(g);
    expect(same.notice).toBeUndefined();
  });

  it('upgrades params through the node types’ own migrations in the main process (StudioApi.migrateGraph)', async () => {
    // credit.gae v2 renames `lambda` to `gaeLambda`; trainer.ppo v2 has no migration from v1.
    const definitions = registry.list().map((d) => {
      if (d.type === 'credit.gae')
        return {
          ...d,
          version: 2,
          migrations: {
            1: ({ lambda, ...rest }: Record<string, unknown>) => ({ ...rest, gaeLambda: lambda }),
          },
        };
      return d.type === 'trainer.ppo' ? { ...d, version: 2 } : d;
    });
    const newer = new NodeRegistry(definitions);
    const service = new StudioService({ dataDir: '/nonexistent-unused', registry: newer, log: () => {} });
    const outcome = await migrateNodeTypes(cartpole(), catalogIndex(buildCatalog(newer)), (g) =>
      service.migrateGraph(g),
    );
    expect(outcome.upgraded).toEqual([{ nodeId: 'gae', type: 'credit.gae', from: 1, to: 2 }]);
    expect(outcome.failed).toEqual([{ nodeId: 'ppo', type: 'trainer.ppo', from: 1, to: 2 }]);
    const gae = outcome.graph.nodes.find((n) => n.id === 'gae')!;
    expect(gae).toMatchObject({ typeVersion: 2, params: { gamma: 0.99, gaeLambda: 0.95 } });
    expect(outcome.graph.nodes.find((n) => n.id === 'ppo')).toEqual(
      cartpole().nodes.find((n) => n.id === 'ppo'),
    );
  });

  it('reads old file versions and refuses unreadable files with the reason', () => {
    const v0 = JSON.stringify({
      version: 0,
      title: 'Old',
      randomSeed: 3,
      settings: { iterations: 5 },
      nodes: [{ id: 'env', kind: 'env.cartpole', config: {}, x: 1, y: 2 }],
      links: [],
    });
    const read = readGraphText(v0, 'old.json');
    expect(read.ok && read.migratedFrom).toBe(0);
    expect(read.ok && read.graph.nodes[0]).toMatchObject({
      id: 'env',
      type: 'env.cartpole',
      position: { x: 1, y: 2 },
    });
    const broken = readGraphText('{"nodes": [', 'broken.json');
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.reason).toMatch(/^broken\.json cannot be opened: .*JSON/);
    const newer = readGraphText(JSON.stringify({ ...cartpole(), version: 99 }), 'newer.json');
    expect(!newer.ok && newer.reason).toContain('newer version of Agent RL Studio');
  });
});

describe('GraphStore (Dexie over fake-indexeddb)', () => {
  let store: GraphStore | undefined;
  afterEach(() => store?.close());

  const open = (now: () => number) =>
    new GraphStore({
      name: `test-${Math.random()}`,
      dexie: { indexedDB: new IDBFactory(), IDBKeyRange },
      now,
    });

  it('autosaves, keeps versions, restores, deletes with undo and purges a day later', async () => {
    let clock = 1_000_000;
    store = open(() => clock);
    const created = await store.create(cartpole());
    expect((await store.versions(created.id)).map((v) => v.reason)).toEqual(['created']);

    clock += 1000;
    const edited = setParam(cartpole(), 'gae', 'gamma', 0.9);
    await store.save(created.id, edited);
    expect((await store.get(created.id))!.graph.nodes.find((n) => n.id === 'gae')!.params.gamma).toBe(0.9);
    // A quick autosave does not add a version; one after the interval does.
    expect(await store.versions(created.id)).toHaveLength(1);
    clock += AUTOSAVE_VERSION_INTERVAL_MS;
    await store.save(created.id, setParam(edited, 'gae', 'gamma', 0.8));
    const versions = await store.versions(created.id);
    expect(versions.map((v) => v.reason)).toEqual(['autosave', 'created']);
    expect(versions[1].graph.nodes.find((n) => n.id === 'gae')!.params.gamma).toBe(0.99);

    const copy = await store.duplicate(created.id);
    expect(copy.name).toBe('PPO on CartPole (copy)');
    const renamed = await store.rename(copy.id, 'Mine');
    expect(renamed.graph.name).toBe('Mine');
    expect((await store.list()).map((g) => g.name).sort()).toEqual(['Mine', 'PPO on CartPole']);

    await store.delete(copy.id);
    expect((await store.list()).map((g) => g.name)).toEqual(['PPO on CartPole']);
    await store.undelete(copy.id);
    expect(await store.list()).toHaveLength(2);
    await store.delete(copy.id);
    clock += 25 * 3600_000;
    expect(await store.purgeDeleted()).toBe(1);
    expect(await store.get(copy.id)).toBeUndefined();
    expect(await store.versions(copy.id)).toEqual([]);
  });

  it('reports a full storage as such', async () => {
    store = open(() => 5);
    const created = await store.create(cartpole());
    const quota = Object.assign(new Error('quota'), { name: 'QuotaExceededError' });
    store.db.graphs.hook('updating', () => {
      throw quota;
    });
    const failure = await store.save(created.id, cartpole()).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StorageFullError);
    expect((failure as Error).message).toContain('storage for Agent RL Studio is full');
  });
});
