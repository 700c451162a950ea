/**
 * Checkpoints: one folder per saved iteration under <runDir>/checkpoints/, written to a temporary folder
 * and renamed into place, with a manifest of SHA-256 sums so that a partial or corrupt checkpoint is
 * detected and refused instead of loaded. `latest.json` names the newest complete one.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { GraphFile } from '../graph/types.ts';
import type { JsonValue, NodeState } from '../node-api.ts';
import type { RngState } from '../rng.ts';

export const CHECKPOINT_FORMAT = 'agent-rl-studio/checkpoint';
export const CHECKPOINT_VERSION = 1;
const KEEP_CHECKPOINTS = 2;

export interface NodeSnapshot {
  rng: RngState;
  state?: NodeState;
}

/** Everything needed to continue a run exactly where it was. */
export interface RunSnapshot {
  /** Completed iterations: the next iteration to run. */
  iteration: number;
  envSteps: number;
  seconds: number;
  seed: number;
  totalIterations: number;
  backend: string;
  graph: GraphFile;
  nodeVersions: Record<string, number>;
  nodes: Record<string, NodeSnapshot>;
}

type ArrayKind = 'float32' | 'float64' | 'int32' | 'uint8';
interface ArrayRef {
  kind: ArrayKind;
  offset: number;
  length: number;
}
interface StoredNode {
  rng: RngState;
  json?: JsonValue;
  arrays?: Record<string, ArrayRef>;
}
interface StoredState extends Omit<RunSnapshot, 'nodes'> {
  format: string;
  version: number;
  nodes: Record<string, StoredNode>;
}

export class CheckpointError extends Error {
  constructor(
    readonly dir: string,
    message: string,
  ) {
    super(`Checkpoint ${dir}: ${message}`);
    this.name = 'CheckpointError';
  }
}

const kindOf = (a: ArrayLike<number>): ArrayKind =>
  a instanceof Float32Array
    ? 'float32'
    : a instanceof Float64Array
      ? 'float64'
      : a instanceof Int32Array
        ? 'int32'
        : 'uint8';

function arrayFrom(kind: ArrayKind, bytes: Buffer, ref: ArrayRef): NonNullable<NodeState['arrays']>[string] {
  const copy = bytes.buffer.slice(
    bytes.byteOffset + ref.offset,
    bytes.byteOffset + ref.offset + byteLength(kind, ref.length),
  );
  switch (kind) {
    case 'float32':
      return new Float32Array(copy);
    case 'float64':
      return new Float64Array(copy);
    case 'int32':
      return new Int32Array(copy);
    default:
      return new Uint8Array(copy);
  }
}

const byteLength = (kind: ArrayKind, length: number) =>
  length * (kind === 'float64' ? 8 : kind === 'uint8' ? 1 : 4);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
}

export function checkpointName(iteration: number): string {
  return `iter-${String(iteration).padStart(7, '0')}`;
}

export async function writeCheckpoint(runDir: string, snapshot: RunSnapshot): Promise<string> {
  const root = path.join(runDir, 'checkpoints');
  await fs.mkdir(root, { recursive: true });
  const chunks: Buffer[] = [];
  let offset = 0;
  const nodes: Record<string, StoredNode> = {};
  for (const [id, node] of Object.entries(snapshot.nodes)) {
    const stored: StoredNode = { rng: node.rng, json: node.state?.json };
    if (node.state?.arrays) {
      stored.arrays = {};
      for (const [name, array] of Object.entries(node.state.arrays)) {
        const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
        stored.arrays[name] = { kind: kindOf(array), offset, length: array.length };
        chunks.push(Buffer.from(bytes));
        offset += bytes.length;
        const pad = (8 - (offset % 8)) % 8; // keep every array 8-byte aligned
        if (pad) {
          chunks.push(Buffer.alloc(pad));
          offset += pad;
        }
      }
    }
    nodes[id] = stored;
  }
  const { nodes: _omit, ...rest } = snapshot;
  const state: StoredState = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...rest, nodes };
  const stateText = JSON.stringify(state);
  const arrays = Buffer.concat(chunks);
  const manifest = {
    format: CHECKPOINT_FORMAT,
    iteration: snapshot.iteration,
    files: {
      'run-state.json': { bytes: Buffer.byteLength(stateText), sha256: sha256(stateText) },
      'arrays.bin': { bytes: arrays.length, sha256: sha256(arrays) },
    },
  };
  const name = checkpointName(snapshot.iteration);
  const final = path.join(root, name);
  const tmp = path.join(root, `.${name}.tmp-${process.pid}-${Date.now()}`);
  await fs.mkdir(tmp, { recursive: true });
  await fs.writeFile(path.join(tmp, 'run-state.json'), stateText);
  await fs.writeFile(path.join(tmp, 'arrays.bin'), arrays);
  await fs.writeFile(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2));
  await fs.rm(final, { recursive: true, force: true });
  await fs.rename(tmp, final);
  await writeFileAtomic(path.join(root, 'latest.json'), JSON.stringify({ checkpoint: name }));
  await pruneCheckpoints(root, name);
  return final;
}

async function pruneCheckpoints(root: string, newest: string): Promise<void> {
  const names = (await fs.readdir(root)).filter((n) => /^iter-\d+$/.test(n)).sort();
  const old = names.filter((n) => n !== newest).slice(0, Math.max(0, names.length - KEEP_CHECKPOINTS));
  await Promise.all(old.map((n) => fs.rm(path.join(root, n), { recursive: true, force: true })));
}

/** The newest complete checkpoint of a run folder, or the folder itself if it is a checkpoint. */
export async function resolveCheckpoint(dir: string): Promise<string> {
  if (await exists(path.join(dir, 'manifest.json'))) return dir;
  const root = (await exists(path.join(dir, 'checkpoints'))) ? path.join(dir, 'checkpoints') : dir;
  try {
    const latest = JSON.parse(await fs.readFile(path.join(root, 'latest.json'), 'utf8')) as {
      checkpoint?: unknown;
    };
    if (typeof latest.checkpoint === 'string' && /^iter-\d+$/.test(latest.checkpoint)) {
      return path.join(root, latest.checkpoint);
    }
  } catch {
    // fall through to the clear error below
  }
  throw new CheckpointError(dir, 'no checkpoint found (expected checkpoints/latest.json or a manifest.json)');
}

export async function readCheckpoint(dir: string): Promise<RunSnapshot> {
  const checkpoint = await resolveCheckpoint(dir);
  const read = async (name: string) => {
    try {
      return await fs.readFile(path.join(checkpoint, name));
    } catch {
      throw new CheckpointError(checkpoint, `${name} is missing: the checkpoint is incomplete`);
    }
  };
  let manifest: { format?: unknown; files?: Record<string, { bytes: number; sha256: string }> };
  try {
    manifest = JSON.parse((await read('manifest.json')).toString('utf8'));
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(checkpoint, 'manifest.json is corrupt');
  }
  if (manifest.format !== CHECKPOINT_FORMAT || !manifest.files) {
    throw new CheckpointError(checkpoint, 'manifest.json is not an Agent RL Studio checkpoint manifest');
  }
  const files: Record<string, Buffer> = {};
  for (const name of ['run-state.json', 'arrays.bin']) {
    const data = await read(name);
    const expected = manifest.files[name];
    if (!expected || expected.bytes !== data.length || expected.sha256 !== sha256(data)) {
      throw new CheckpointError(checkpoint, `${name} does not match its checksum: the checkpoint is corrupt`);
    }
    files[name] = data;
  }
  const state = JSON.parse(files['run-state.json'].toString('utf8')) as StoredState;
  if (state.format !== CHECKPOINT_FORMAT || state.version > CHECKPOINT_VERSION) {
    throw new CheckpointError(checkpoint, `unsupported checkpoint version ${String(state.version)}`);
  }
  const nodes: Record<string, NodeSnapshot> = {};
  for (const [id, stored] of Object.entries(state.nodes)) {
    const arrays = stored.arrays
      ? Object.fromEntries(
          Object.entries(stored.arrays).map(([name, ref]) => [
            name,
            arrayFrom(ref.kind, files['arrays.bin'], ref),
          ]),
        )
      : undefined;
    nodes[id] = { rng: stored.rng, state: { json: stored.json, arrays } };
  }
  const { format: _f, version: _v, nodes: _n, ...rest } = state;
  return { ...rest, nodes };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
