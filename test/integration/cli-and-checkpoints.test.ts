import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { readCheckpoint } from '../../src-main/engine/runtime/checkpoint.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, repoRoot } from '../helpers/graphs.ts';

const exec = promisify(execFile);
const cli = path.join(repoRoot, 'bin', 'agent-rl-studio.js');

async function trainedRunDir(): Promise<string> {
  const runDir = await mkdtemp(path.join(tmpdir(), 'studio-ckpt-'));
  const graph = loadTemplate('cartpole-ppo');
  const result = await executeRun({
    graph: { ...graph, run: { ...graph.run, iterations: 2, checkpointEvery: 1, backend: 'wasm' } },
    registry: createRegistry(),
    runDir,
  });
  expect(result.status).toBe('finished');
  return runDir;
}

describe('checkpoints', () => {
  it('records the backend and refuses a corrupt or partial checkpoint with a clear message', async () => {
    const runDir = await trainedRunDir();
    const snapshot = await readCheckpoint(runDir);
    expect(snapshot.iteration).toBe(2);
    expect(snapshot.backend).toBe('wasm');
    const dir = path.join(runDir, 'checkpoints', 'iter-0000002');
    const state = await readFile(path.join(dir, 'run-state.json'), 'utf8');
    const runState = JSON.parse(state) as { backend: string };
    expect(runState.backend).toBe('wasm');

    const arrays = await readFile(path.join(dir, 'arrays.bin'));
    arrays[10] ^= 0xff;
    await writeFile(path.join(dir, 'arrays.bin'), arrays);
    await expect(readCheckpoint(runDir)).rejects.toThrow(
      /arrays\.bin does not match its checksum: the checkpoint is corrupt/,
    );
    const resumed = await executeRun({ graph: undefined, registry: createRegistry(), resumeFrom: runDir });
    expect(resumed.status).toBe('failed');
    expect(resumed.error?.message).toMatch(/corrupt/);

    await rm(path.join(dir, 'run-state.json'));
    await expect(readCheckpoint(runDir)).rejects.toThrow(
      /run-state\.json is missing: the checkpoint is incomplete/,
    );
  }, 60_000);
});

describe('CLI', () => {
  it('prints diagnostics as nodeId.field: message and exits non-zero', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'studio-cli-'));
    const graph = loadTemplate('cartpole-ppo');
    graph.nodes = graph.nodes.map((n) => (n.id === 'ppo' ? { ...n, params: { ...n.params, lr: -1 } } : n));
    const file = path.join(dir, 'bad.json');
    await writeFile(file, JSON.stringify(graph));
    const failure = await exec(process.execPath, [cli, 'train', file], { cwd: dir }).catch((e) => e);
    expect(failure.code).toBe(1);
    expect(failure.stderr).toMatch(/ppo\.lr: Parameter 'lr'/);

    await writeFile(file, '{ not json');
    const broken = await exec(process.execPath, [cli, 'train', file], { cwd: dir }).catch((e) => e);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/not valid JSON/);
  }, 60_000);

  it('stops cleanly on Ctrl-C and leaves a readable checkpoint', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'studio-sigint-'));
    const child = spawn(
      process.execPath,
      [
        cli,
        'train',
        path.join(repoRoot, 'templates', 'cartpole-ppo.json'),
        '--out',
        out,
        '--backend',
        'wasm',
      ],
      { cwd: repoRoot },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (/iteration [3-9]\d*\/|iteration \d\d+\//.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stderr).toMatch(/Run stopped at iteration \d+/);
    const snapshot = await readCheckpoint(out);
    expect(snapshot.iteration).toBeGreaterThan(0);
  }, 120_000);
});
