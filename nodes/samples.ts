/**
 * Episodes for the trajectory viewer: credit assigners cut a few whole episodes out of a time-major
 * batch, with the reward, value, advantage and return of each step and any safety interventions.
 */
import type { TrajectorySample } from '../src-main/engine/events.ts';
import type { Advantages, VectorTrajectories } from './contracts.ts';

/** How many episodes each iteration shows: enough to step through, small enough to stream. */
export const SAMPLES_PER_ITERATION = 4;

/**
 * Up to `count` episodes, one per environment copy 0..count-1: the first episode of that copy that both
 * starts and ends inside this batch or, when none does (a policy that balances for longer than a batch),
 * the copy's longest segment: the end of an episode begun earlier, or the start of one that goes on.
 */
export function vectorEpisodeSamples(
  batch: VectorTrajectories,
  credit: Advantages,
  nodeId: string,
  iteration: number,
  count = SAMPLES_PER_ITERATION,
): TrajectorySample[] {
  const n = batch.numEnvs;
  const samples: TrajectorySample[] = [];
  for (let env = 0; env < Math.min(count, n); env++) {
    const ends: number[] = [];
    for (let t = 0; t < batch.numSteps; t++) {
      const i = t * n + env;
      if (batch.terminated[i] || batch.truncated[i]) ends.push(t);
    }
    const [start, end] =
      ends.length >= 2 ? [ends[0]! + 1, ends[1]!] : longestSegment(ends[0], batch.numSteps);
    const pick = <T extends ArrayLike<number>>(values: T) => {
      const out: number[] = [];
      for (let t = start; t <= end; t++) out.push(round(values[t * n + env]!));
      return out;
    };
    const interventions = (batch.interventions ?? [])
      .filter((x) => x.env === env && x.t >= start && x.t <= end)
      .map(({ t, env: _env, ...rest }) => ({ ...rest, step: t - start }));
    samples.push({
      kind: 'vector',
      nodeId,
      iteration,
      index: samples.length,
      // Multi-agent batches: rows are (copy, agent) pairs, so the viewer can show each agent's credit.
      ...(batch.numAgents
        ? { env: Math.floor(env / batch.numAgents), agent: env % batch.numAgents }
        : { env }),
      actions: pick(batch.actions),
      rewards: pick(batch.rewards),
      values: pick(batch.values),
      advantages: pick(credit.advantages),
      returns: pick(credit.returns),
      ...(interventions.length ? { interventions } : {}),
    });
  }
  return samples;
}

/** The longer of the two pieces a single episode end at `end` cuts a batch of `numSteps` into. */
function longestSegment(end: number | undefined, numSteps: number): [number, number] {
  if (end === undefined || end === numSteps - 1) return [0, numSteps - 1];
  return end + 1 >= numSteps - 1 - end ? [0, end] : [end + 1, numSteps - 1];
}

/** Four significant decimals: the viewer draws them, nobody needs float32 noise over the wire. */
const round = (x: number) => Math.round(x * 1e4) / 1e4;
