import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isMultiAgentEnv, type VectorEnv, type VectorStep } from '../../nodes/contracts.ts';
import { loadTypedState, saveTypedState, typedStateHooks } from '../../nodes/environment/typed-state.ts';
import { nodeLibrary } from '../../nodes/index.ts';
import {
  type AnyNodeDefinition,
  type NodeContext,
  NodeError,
  type NodeInstance,
  type NodeState,
} from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import {
  type NodeSnapshot,
  readCheckpoint,
  writeCheckpoint,
} from '../../src-main/engine/runtime/checkpoint.ts';
import { loadTemplate } from '../helpers/graphs.ts';

/** The fields of a NodeContext an environment node uses; the rest is never touched by env nodes. */
function envContext(nodeId: string, seed: number): NodeContext {
  return { nodeId, label: nodeId, rng: new Rng(seed), inputs: {} } as unknown as NodeContext;
}

interface BuiltEnv {
  instance: NodeInstance;
  env: VectorEnv;
  ctx: NodeContext;
}

/** Short time limits, so that the episode clocks show in the steps compared (defaults elsewhere). */
const paramsFor: Record<string, Record<string, unknown>> = { 'env.cartpole': { maxSteps: 8 } };

async function build(definition: AnyNodeDefinition, seed: number): Promise<BuiltEnv> {
  const ctx = envContext(definition.type, seed);
  const instance = await definition.create(definition.params.parse(paramsFor[definition.type] ?? {}), ctx);
  return { instance, env: instance.components?.env as VectorEnv, ctx };
}

const isVectorEnv = (value: unknown): value is VectorEnv =>
  typeof (value as Partial<VectorEnv> | undefined)?.step === 'function' &&
  typeof (value as Partial<VectorEnv>).numEnvs === 'number';

/** Every registered environment node whose component is a vector environment (text envs excluded). */
const vectorEnvs: AnyNodeDefinition[] = [];
for (const definition of nodeLibrary.filter((d) => d.family === 'environment')) {
  const { env } = await build(definition, 1);
  if (isVectorEnv(env)) vectorEnvs.push(definition);
}

/** One step's outcome as plain numbers; final observations (and states) only where an episode ended. */
function outcome(env: VectorEnv, step: VectorStep): Record<string, number[]> {
  const ended = (row: number) => step.terminated[row] === 1 || step.truncated[row] === 1;
  const rowsOf = (data: Float32Array, width: number, endedRow: (r: number) => boolean) =>
    Array.from(data).filter((_, i) => endedRow(Math.floor(i / width)));
  const out: Record<string, number[]> = {
    rewards: Array.from(step.rewards),
    terminated: Array.from(step.terminated),
    truncated: Array.from(step.truncated),
    finalObservations: rowsOf(step.finalObservations, env.observationSize, ended),
    observations: Array.from(env.observations()),
  };
  if (step.costs) out.costs = Array.from(step.costs);
  if (step.trueRewards) out.trueRewards = Array.from(step.trueRewards);
  if (isMultiAgentEnv(env)) {
    out.states = Array.from(env.states());
    out.finalStates = rowsOf(env.finalStates(), env.stateSize, (c) => ended(c * env.numAgents));
  }
  return out;
}

/** A stream of valid random actions for `env`. */
function actionSource(env: VectorEnv, seed: number): () => Int32Array {
  const rng = new Rng(seed);
  return () => Int32Array.from({ length: env.numEnvs }, () => rng.int(env.numActions));
}

/** What a checkpoint on disk gives back (RNG state and node state): the runtime's own writer and reader. */
async function throughDisk(nodeId: string, rng: Rng, state: NodeState): Promise<Required<NodeSnapshot>> {
  const runDir = await mkdtemp(path.join(tmpdir(), 'env-state-'));
  tempDirs.push(runDir);
  await writeCheckpoint(runDir, {
    iteration: 1,
    envSteps: 0,
    seconds: 0,
    seed: 1,
    totalIterations: 2,
    backend: 'cpu',
    graph: loadTemplate('cartpole-ppo'),
    nodeVersions: {},
    nodes: { [nodeId]: { rng: rng.state(), state } },
  });
  const restored = (await readCheckpoint(runDir)).nodes[nodeId];
  return { rng: restored.rng, state: restored.state ?? {} };
}

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** An environment node stepped `steps` times with random actions, and its state saved then. */
async function steppedAndSaved(definition: AnyNodeDefinition, seed: number, steps: number) {
  const built = await build(definition, seed);
  const act = actionSource(built.env, seed + 1);
  for (let i = 0; i < steps; i++) built.env.step(act());
  expect(built.instance.saveState, `${definition.type} has no saveState`).toBeTypeOf('function');
  expect(built.instance.loadState, `${definition.type} has no loadState`).toBeTypeOf('function');
  return { ...built, act, saved: await built.instance.saveState!() };
}

const cases = vectorEnvs.map((d) => [d.type, d] as const);

/** The error a load throws, or undefined when it loads. */
function loadError(instance: NodeInstance, state: NodeState): unknown {
  try {
    instance.loadState?.(state);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('vector environment checkpoints', () => {
  it('finds the vector environments of the registry', () => {
    const types = vectorEnvs.map((d) => d.type);
    for (const type of ['env.cartpole', 'env.bit-flip', 'env.cooperative-meet', 'env.matrix-game']) {
      expect(types).toContain(type);
    }
    expect(types).not.toContain('env.countdown');
  });

  it.each(cases)('%s continues bit for bit after a checkpoint on disk', async (type, definition) => {
    const { act, saved, ...a } = await steppedAndSaved(definition, 11, 25);

    // As the runtime resumes: a fresh node (other seed), its RNG stream restored, then its state.
    const b = await build(definition, 99);
    const restored = await throughDisk(type, a.ctx.rng, saved);
    b.ctx.rng.setState(restored.rng);
    await b.instance.loadState!(restored.state);

    expect(Array.from(b.env.observations())).toEqual(Array.from(a.env.observations()));
    for (let i = 0; i < 40; i++) {
      const actions = act();
      const expected = outcome(a.env, a.env.step(actions));
      expect(outcome(b.env, b.env.step(actions)), `${type} step ${i}`).toEqual(expected);
      // The metric tally was saved mid-iteration: draining it must agree too.
      if (i === 10 || i === 39) expect(b.env.metrics?.()).toEqual(a.env.metrics?.());
    }
  });

  it.each(cases)(
    '%s refuses a truncated, mistyped or incomplete state, naming the node and field',
    async (type, definition) => {
      const { saved } = await steppedAndSaved(definition, 3, 7);
      const b = await build(definition, 4);
      const before = await b.instance.saveState!();
      const expectRefused = (state: NodeState, field: string, message: RegExp) => {
        const error = loadError(b.instance, state);
        expect(error, `${type}: ${message}`).toBeInstanceOf(NodeError);
        expect((error as NodeError).nodeId).toBe(type);
        expect((error as NodeError).field).toBe(field);
        expect((error as NodeError).message).toMatch(message);
        // Refused before anything was written.
        expect(b.instance.saveState!()).toEqual(before);
      };

      const [name, array] = Object.entries(saved.arrays ?? {})[0] ?? [];
      if (name && array) {
        const others = saved.arrays ?? {};
        expectRefused(
          { ...saved, arrays: { ...others, [name]: array.slice(0, array.length - 1) } },
          'numEnvs',
          new RegExp(
            `^${type}\\.numEnvs: saved state '${name}' holds ${array.length - 1} values, expected ${array.length}$`,
          ),
        );
        const mistyped = array instanceof Float32Array ? Float64Array.from(array) : Float32Array.from(array);
        expectRefused(
          { ...saved, arrays: { ...others, [name]: mistyped } },
          name,
          new RegExp(`^${type}\\.${name}: saved state '${name}' holds float(32|64) values, expected`),
        );
        const { [name]: _dropped, ...rest } = others;
        expectRefused(
          { ...saved, arrays: rest },
          name,
          new RegExp(`^${type}\\.${name}: saved state has no '${name}'`),
        );
      }

      const json = saved.json as Record<string, Record<string, number>> | undefined;
      const [group, values] = Object.entries(json ?? {})[0] ?? [];
      if (group && values) {
        const key = Object.keys(values)[0];
        const { [key]: _dropped, ...rest } = values;
        const field = `${group}.${key}`;
        const pattern = new RegExp(`^${type}\\.${field}: saved state has no finite number '${field}'$`);
        expectRefused({ ...saved, json: { ...json, [group]: rest } }, field, pattern);
        expectRefused({ ...saved, json: { ...json, [group]: { ...values, [key]: null } } }, field, pattern);
        expectRefused({ ...saved, json: undefined }, field, pattern);
      }
      expect(name || group, `${type} saves nothing to check`).toBeTruthy();
    },
  );
});

describe('typed state helper', () => {
  it('saves copies, loads in place and runs the restore hook once', () => {
    const position = Int32Array.from([1, 2, 3]);
    const weights = Float64Array.from([0.5, -0.25]);
    const tally = { steps: 4, lastRate: 0.75 };
    let rebuilt = 0;
    const spec = {
      arrays: { position, weights },
      numbers: { tally },
      sizedBy: 'numEnvs',
      restored: () => {
        rebuilt += 1;
      },
    };
    const saved = saveTypedState(spec);
    position[0] = 9;
    tally.steps = 7;
    expect(Array.from(saved.arrays?.position ?? [])).toEqual([1, 2, 3]);
    expect(saved.json).toEqual({ tally: { steps: 4, lastRate: 0.75 } });

    loadTypedState('env', saved, spec);
    expect(Array.from(position)).toEqual([1, 2, 3]);
    expect(Array.from(weights)).toEqual([0.5, -0.25]);
    expect(tally).toEqual({ steps: 4, lastRate: 0.75 });
    expect(rebuilt).toBe(1);

    // A bad field anywhere leaves every field as it was and skips the hook.
    const { loadState } = typedStateHooks('env', spec);
    position.set([7, 7, 7]);
    const bad = { arrays: { position: Int32Array.from([0, 0, 0]), weights: Float64Array.from([1]) } };
    expect(() => loadState(bad)).toThrow(/^env\.numEnvs: saved state 'weights' holds 1 values, expected 2$/);
    expect(Array.from(position)).toEqual([7, 7, 7]);
    expect(rebuilt).toBe(1);
  });

  it('names the field itself when no parameter sizes the arrays', () => {
    const spec = { arrays: { clock: new Int32Array(2) } };
    expect(() => loadTypedState('meet', { arrays: { clock: new Int32Array(3) } }, spec)).toThrow(
      /^meet\.clock: saved state 'clock' holds 3 values, expected 2$/,
    );
    expect(() => loadTypedState('meet', { arrays: { clock: new Uint8Array(2) } }, spec)).toThrow(
      /^meet\.clock: saved state 'clock' holds uint8 values, expected int32$/,
    );
  });
});
