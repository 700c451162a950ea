/** Shared by the StudioApi tests (unit, web server): a tiny trainable graph and an event recorder. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { GraphFile, RunEvent } from '../../src-main/api/studio-api.ts';

export const TEMPLATE = fileURLToPath(new URL('../../templates/cartpole-ppo.json', import.meta.url));

/** The CartPole template made tiny: iterations of a few milliseconds on the CPU backend. */
export async function tinyGraph(
  overrides: { iterations?: number; checkpointEvery?: number } = {},
): Promise<GraphFile> {
  const graph = JSON.parse(await readFile(TEMPLATE, 'utf8')) as GraphFile;
  graph.run = {
    ...graph.run,
    iterations: overrides.iterations ?? 100_000,
    checkpointEvery: overrides.checkpointEvery ?? 2,
    backend: 'cpu',
  };
  const params: Record<string, Record<string, unknown>> = {
    env: { numEnvs: 2 },
    policy: { hidden: [8] },
    value: { hidden: [8] },
    rollout: { stepsPerEnv: 8 },
    ppo: { epochs: 1, minibatches: 1 },
  };
  for (const node of graph.nodes) Object.assign(node.params, params[node.id] ?? {});
  return graph;
}

/** Records a run's events; resolves waits on them. */
export class EventLog {
  readonly events: RunEvent[] = [];
  readonly seqs: number[] = [];
  private waiters: (() => void)[] = [];

  readonly listener = (event: RunEvent, seq: number) => {
    this.events.push(event);
    this.seqs.push(seq);
    for (const wake of this.waiters.splice(0)) wake();
  };

  get metrics() {
    return this.events.filter((e): e is Extract<RunEvent, { type: 'metrics' }> => e.type === 'metrics');
  }

  get statuses() {
    return this.events
      .filter((e): e is Extract<RunEvent, { type: 'status' }> => e.type === 'status')
      .map((e) => e.status);
  }

  async until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; statuses: ${this.statuses.join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  lastStatus() {
    return this.statuses.at(-1);
  }
}
