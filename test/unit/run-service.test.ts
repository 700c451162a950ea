import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dispatchCall } from '../../src-main/api/dispatch.ts';
import { StudioService } from '../../src-main/api/studio-service.ts';

let tmp: string;
let service: StudioService;

async function writeRun(id: string, status: string, pid?: number) {
  const dir = path.join(tmp, 'runs', id);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'run.json'),
    JSON.stringify({
      format: 'agent-rl-studio/run',
      version: 1,
      id,
      graphName: 'G',
      createdAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:00:00Z',
      status,
      iteration: 1,
      totalIterations: 2,
      envSteps: 10,
      ...(pid ? { pid } : {}),
    }),
  );
  await writeFile(
    path.join(dir, 'metrics.jsonl'),
    '{"iteration":0,"envSteps":10,"seconds":1,"metrics":{}}\n',
  );
  return dir;
}

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'run-service-'));
  service = new StudioService({ dataDir: tmp, log: () => {} });
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('deleteRun', () => {
  it('removes a finished run folder and its history; the run list no longer has it', async () => {
    const dir = await writeRun('done-run', 'finished');
    const seen: string[] = [];
    await service.subscribe('done-run', (event) => seen.push(event.type));
    expect(seen).toEqual(['metrics', 'status']);
    expect((await service.listRuns()).map((r) => r.id)).toEqual(['done-run']);
    const reply = await dispatchCall(service, 'deleteRun', ['done-run']);
    expect(reply).toEqual({ ok: true, result: null });
    expect(existsSync(dir)).toBe(false);
    expect(await service.listRuns()).toEqual([]);
    await expect(service.subscribe('done-run', () => {})).rejects.toMatchObject({ code: 'not-found' });
  });

  it('refuses bad ids and a run another live process is running', async () => {
    expect(await dispatchCall(service, 'deleteRun', ['../x'])).toMatchObject({
      ok: false,
      error: { code: 'bad-arguments' },
    });
    // The parent of this test process is alive and is not this process.
    await writeRun('elsewhere', 'running', process.ppid);
    await expect(service.deleteRun('elsewhere')).rejects.toMatchObject({ code: 'conflict' });
    expect(existsSync(path.join(tmp, 'runs', 'elsewhere'))).toBe(true);
  });
});
