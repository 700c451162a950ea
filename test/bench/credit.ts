/**
 * Credit-assignment comparisons (issue 4): return-conditioned HCA vs Monte-Carlo on the delayed-effect
 * task, hindsight credit vs Monte-Carlo on key-to-door, state-conditioned HCA vs Monte-Carlo on the
 * shortcut chain, and HER vs GAE on bit flipping, each over several seeds. The graph builders
 * are shared with the integration tests, which run the same comparison on a CI-sized budget.
 * `benchCredit()` returns the printed figures (a Section per task); `npm run bench` prints them.
 */
import { createRegistry } from '../../nodes/index.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { graphEdge as edge, graphNode as node } from '../helpers/graphs.ts';
import { fmt, type Section } from './table.ts';

export type CreditKind = 'hca-return' | 'hca-state' | 'monte-carlo' | 'gae';

export interface PipelineOptions {
  env: { type: string; params: Record<string, unknown> };
  credit: CreditKind;
  creditParams?: Record<string, unknown>;
  stepsPerEnv: number;
  hidden?: number[];
  ppo?: Record<string, unknown>;
}

/** env -> MLP policy (+ MLP critic for Monte-Carlo) -> rollout -> credit -> PPO. */
export function creditPipeline(o: PipelineOptions, iterations: number, name = `${o.credit} pipeline`) {
  const hidden = o.hidden ?? [16];
  const withValue = o.credit === 'monte-carlo' || o.credit === 'gae';
  const creditType = `credit.${o.credit}`;
  const creditParams =
    o.credit === 'monte-carlo'
      ? { gamma: 1, baseline: 'value', ...o.creditParams }
      : o.credit === 'gae'
        ? { gamma: 1, lambda: 0.95, ...o.creditParams }
        : { ...o.creditParams };
  return {
    format: 'agent-rl-studio/graph',
    version: 1,
    name,
    seed: 1,
    run: { iterations, checkpointEvery: 0, backend: 'wasm' },
    nodes: [
      node('env', o.env.type, o.env.params, 0),
      node('policy', 'agent.mlp-policy', { hidden, activation: 'tanh' }, 300),
      ...(withValue ? [node('value', 'value.mlp', { hidden }, 300, 200)] : []),
      node('rollout', 'rollout.vector', { stepsPerEnv: o.stepsPerEnv, window: 100 }, 600),
      node('credit', creditType, creditParams, 900),
      node(
        'ppo',
        'trainer.ppo',
        { lr: 0.01, epochs: 4, minibatches: 2, entropyCoef: 0, annealLr: false, ...o.ppo },
        1200,
      ),
    ],
    edges: [
      edge('env', 'env', 'policy', 'env'),
      edge('env', 'env', 'rollout', 'env'),
      edge('policy', 'policy', 'rollout', 'policy'),
      ...(withValue
        ? [
            edge('env', 'env', 'value', 'env'),
            edge('value', 'value', 'rollout', 'value'),
            edge('value', 'value', 'ppo', 'value'),
          ]
        : []),
      edge('rollout', 'trajectories', 'credit', 'trajectories'),
      edge('rollout', 'trajectories', 'ppo', 'trajectories'),
      edge('credit', 'advantages', 'ppo', 'advantages'),
      ...(withValue ? [] : [edge('policy', 'policy', 'credit', 'policy')]),
      edge('policy', 'policy', 'ppo', 'policy'),
    ],
  } as GraphFile;
}

export interface ThresholdResult {
  seed: number;
  /** Episodes finished before the smoothed metric first reached the threshold (null: never). */
  episodesToThreshold: number | null;
  finalRate: number;
  seconds: number;
}

/**
 * Trains `graph` and returns the number of episodes finished when the mean of `metric` over the last
 * `smooth` iterations first reaches `threshold`.
 */
export async function episodesToThreshold(
  graph: GraphFile,
  seed: number,
  metric: string,
  threshold: number,
  smooth = 3,
): Promise<ThresholdResult> {
  const started = performance.now();
  const rates: number[] = [];
  let episodes = 0;
  let reachedAt: number | null = null;
  const result = await executeRun({
    graph,
    registry: createRegistry(),
    backend: 'wasm',
    seed,
    onEvent: (event) => {
      if (event.type !== 'metrics') return;
      const m = event.record.metrics;
      episodes += m['rollout/episodes'] ?? 0;
      rates.push(m[metric] ?? Number.NaN);
      const recent = rates.slice(-smooth);
      const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
      if (reachedAt === null && recent.length === smooth && mean >= threshold) reachedAt = episodes;
    },
  });
  if (result.error) throw new Error(`seed ${seed}: ${result.error.message}`);
  const last = rates.slice(-smooth);
  return {
    seed,
    episodesToThreshold: reachedAt,
    finalRate: last.reduce((a, b) => a + b, 0) / last.length,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Median with a run that never reached the threshold counted as +infinity. */
export function medianEpisodes(results: ThresholdResult[]): number {
  const xs = results.map((r) => r.episodesToThreshold ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/**
 * The delayed-effect comparison: n = 5 aliased noisy steps (sigma 3), 8 copies x 18 steps (3 whole
 * episodes each per iteration), a tabular policy (one-hot observations, no hidden layer, as in the
 * paper's toy tasks), PPO without advantage normalisation (the HCA estimate's scale is meaningful), the
 * same trainer settings for both credit assigners; Monte-Carlo gets a learned value baseline.
 */
export const DELAYED_EFFECT = {
  env: { type: 'env.delayed-effect', params: { numEnvs: 8, n: 5, sigma: 3 } },
  stepsPerEnv: 18,
  hidden: [] as number[],
  ppo: { lr: 0.01, normaliseAdvantages: false },
  hca: { hidden: [] as number[] },
  metric: 'rollout/optimal_action_rate',
  threshold: 0.9,
};

export async function compareOnDelayedEffect(seeds: number[], iterations: number) {
  const rows: Partial<Record<CreditKind, ThresholdResult[]>> = { 'hca-return': [], 'monte-carlo': [] };
  for (const credit of ['hca-return', 'monte-carlo'] as const) {
    const { env, stepsPerEnv, hidden, ppo, hca } = DELAYED_EFFECT;
    const creditParams = credit === 'hca-return' ? hca : {};
    const graph = creditPipeline({ env, stepsPerEnv, hidden, ppo, credit, creditParams }, iterations);
    for (const seed of seeds) {
      rows[credit]?.push(
        await episodesToThreshold(graph, seed, DELAYED_EFFECT.metric, DELAYED_EFFECT.threshold),
      );
    }
  }
  return rows;
}

/**
 * Key-to-door: 3 steps to take the key, 20 steps in an apple room with 8 apples (the distractor), 4 steps
 * to the door (5 with the key). 8 copies x 27 steps (8 whole episodes) per iteration, 64-unit tanh
 * actor and critic, PPO lr 3e-3. GAE(gamma 1, lambda 0.95) against the Monte-Carlo return minus V.
 */
export const KEY_TO_DOOR = {
  env: { type: 'env.key-to-door', params: { numEnvs: 8, keySteps: 3, appleSteps: 20, apples: 8 } },
  stepsPerEnv: 27,
  hidden: [64],
  ppo: { lr: 0.003 },
  metric: 'rollout/key_rate',
  threshold: 0.9,
};

export async function compareOnKeyToDoor(seeds: number[], iterations: number) {
  const rows: Partial<Record<CreditKind, ThresholdResult[]>> = { gae: [], 'monte-carlo': [] };
  for (const credit of ['gae', 'monte-carlo'] as const) {
    const { env, stepsPerEnv, hidden, ppo } = KEY_TO_DOOR;
    const graph = creditPipeline({ env, stepsPerEnv, hidden, ppo, credit }, iterations);
    for (const seed of seeds) {
      rows[credit]?.push(await episodesToThreshold(graph, seed, KEY_TO_DOOR.metric, KEY_TO_DOOR.threshold));
    }
  }
  return rows;
}

/**
 * The shortcut chain of Harutyunyan et al. (2019): n = 5 states, the shortcut jumps to the end with
 * probability 1 - eps = 0.7. 8 copies x 10 steps per iteration, tabular policy (one-hot observations, no
 * hidden layer), PPO lr 1e-2 without advantage normalisation; state-conditioned HCA (tabular h) against
 * the Monte-Carlo return minus a learned V. Metric: the share of decisions that took the shortcut.
 */
export const SHORTCUT = {
  env: { type: 'env.shortcut', params: { numEnvs: 8, n: 5, eps: 0.3 } },
  stepsPerEnv: 10,
  hidden: [] as number[],
  ppo: { lr: 0.01, normaliseAdvantages: false },
  hca: { hidden: [] as number[] },
  metric: 'rollout/optimal_action_rate',
  threshold: 0.9,
};

export function shortcutPipeline(credit: 'hca-state' | 'monte-carlo', iterations: number) {
  const { env, stepsPerEnv, hidden, ppo, hca } = SHORTCUT;
  const creditParams = credit === 'hca-state' ? hca : {};
  return creditPipeline({ env, stepsPerEnv, hidden, ppo, credit, creditParams }, iterations);
}

export async function compareOnShortcut(seeds: number[], iterations: number) {
  const rows: Partial<Record<CreditKind, ThresholdResult[]>> = { 'hca-state': [], 'monte-carlo': [] };
  for (const credit of ['hca-state', 'monte-carlo'] as const) {
    const graph = shortcutPipeline(credit, iterations);
    for (const seed of seeds) {
      rows[credit]?.push(await episodesToThreshold(graph, seed, SHORTCUT.metric, SHORTCUT.threshold));
    }
  }
  return rows;
}

/**
 * Bit flipping (Andrychowicz et al. 2017): n bits, -1 per step, 0 at the goal, n steps per episode.
 * Both arms: 64-unit tanh actor and critic over (bits, goal), PPO lr 1e-2 (4 epochs x 4 minibatches,
 * entropy 0.01), 16 copies x `stepsPerEnv` steps per iteration. HER ('future', 8 relabels, weights
 * truncated at 2) against GAE (gamma 0.98, lambda
 * 0.95) on the same env steps.
 */
export const BIT_FLIP = {
  n: 8,
  numEnvs: 16,
  stepsPerEnv: 16,
  hidden: [64],
  ppo: { lr: 0.01, epochs: 4, minibatches: 4, entropyCoef: 0.01, annealLr: false },
  her: { strategy: 'future', relabels: 8, gamma: 0.98, maxRatio: 2 },
  gae: { gamma: 0.98, lambda: 0.95 },
  metric: 'rollout/success_rate',
  // HER levels off near 0.5 success within 80 iterations (20k steps); GAE stays at chance (~0.02).
  threshold: 0.3,
};

export type BitFlipArm = 'her' | 'gae';

/** env.bit-flip -> actor + critic -> rollout -> (credit.her | credit.gae) -> PPO. */
export function bitFlipPipeline(arm: BitFlipArm, iterations: number, o: Partial<typeof BIT_FLIP> = {}) {
  const b = { ...BIT_FLIP, ...o };
  const her = arm === 'her';
  return {
    format: 'agent-rl-studio/graph',
    version: 1,
    name: `bit-flip n=${b.n}: PPO + ${arm}`,
    seed: 1,
    run: { iterations, checkpointEvery: 0, backend: 'wasm' },
    nodes: [
      node('env', 'env.bit-flip', { n: b.n, numEnvs: b.numEnvs }, 0),
      node('policy', 'agent.mlp-policy', { hidden: b.hidden, activation: 'tanh' }, 300),
      node('value', 'value.mlp', { hidden: b.hidden }, 300, 200),
      node('rollout', 'rollout.vector', { stepsPerEnv: b.stepsPerEnv, window: 100 }, 600),
      node('credit', her ? 'credit.her' : 'credit.gae', her ? b.her : b.gae, 900),
      node('ppo', 'trainer.ppo', b.ppo, 1200),
    ],
    edges: [
      edge('env', 'env', 'policy', 'env'),
      edge('env', 'env', 'value', 'env'),
      edge('env', 'env', 'rollout', 'env'),
      edge('policy', 'policy', 'rollout', 'policy'),
      edge('value', 'value', 'rollout', 'value'),
      edge('rollout', 'trajectories', 'credit', 'trajectories'),
      ...(her
        ? [
            edge('env', 'env', 'credit', 'env'),
            edge('policy', 'policy', 'credit', 'policy'),
            edge('value', 'value', 'credit', 'value'),
            edge('credit', 'trajectories', 'ppo', 'trajectories'),
          ]
        : [edge('rollout', 'trajectories', 'ppo', 'trajectories')]),
      edge('credit', 'advantages', 'ppo', 'advantages'),
      edge('policy', 'policy', 'ppo', 'policy'),
      edge('value', 'value', 'ppo', 'value'),
    ],
  } as GraphFile;
}

export async function compareOnBitFlip(seeds: number[], iterations: number) {
  const rows: Record<BitFlipArm, ThresholdResult[]> = { her: [], gae: [] };
  for (const arm of ['her', 'gae'] as const) {
    const graph = bitFlipPipeline(arm, iterations);
    for (const seed of seeds) {
      rows[arm].push(await episodesToThreshold(graph, seed, BIT_FLIP.metric, BIT_FLIP.threshold));
    }
  }
  return rows;
}

function section(title: string, rows: Partial<Record<string, ThresholdResult[]>>, notes: string[]): Section {
  const out: string[][] = [];
  for (const [credit, results] of Object.entries(rows)) {
    if (!results?.length) continue;
    for (const r of results) {
      out.push([credit, String(r.seed), fmt(r.episodesToThreshold), fmt(r.finalRate, 3), fmt(r.seconds, 1)]);
    }
    out.push([`${credit} median`, '', fmt(medianEpisodes(results)), '', '']);
  }
  return {
    title,
    header: ['credit', 'seed', 'episodes to threshold', 'final rate', 'seconds'],
    rows: out,
    notes,
  };
}

export async function benchCredit(seeds = [1, 2, 3, 4, 5]): Promise<Section[]> {
  const delayed = await compareOnDelayedEffect(seeds, 40);
  const keyToDoor = await compareOnKeyToDoor(seeds, 80);
  const shortcut = await compareOnShortcut(seeds, 40);
  const bitFlip = await compareOnBitFlip(seeds, 80);
  return [
    section('Key-to-door (3 key steps, 20 apple steps): GAE vs Monte-Carlo', keyToDoor, [
      `threshold: mean key rate over 3 iterations >= ${KEY_TO_DOOR.threshold}`,
    ]),
    section('Delayed effect (n=5, sigma=3): HCA-return vs Monte-Carlo', delayed, [
      `threshold: mean optimal-action rate over 3 iterations >= ${DELAYED_EFFECT.threshold}`,
    ]),
    section('Shortcut (n=5, eps=0.3): HCA-state vs Monte-Carlo', shortcut, [
      `threshold: mean shortcut rate over 3 iterations >= ${SHORTCUT.threshold}`,
    ]),
    section(`Bit flipping (n=${BIT_FLIP.n}, 80 x 256 env steps): HER vs GAE`, bitFlip, [
      `threshold: mean success rate over 3 iterations >= ${BIT_FLIP.threshold}; final rate: last 3 iterations`,
    ]),
  ];
}
