import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DiscretePolicy, VectorTrajectories } from '../../nodes/contracts.ts';
import { SafetyGridworldVector } from '../../nodes/environment/safety-gridworld.ts';
import filterNode, {
  type ActionFilterParams,
  DiscreteActionRules,
  GatedDiscretePolicy,
  GatedTextPolicy,
  TextActionRules,
  toolNames,
} from '../../nodes/safety/action-filter.ts';
import { KlGuard } from '../../nodes/safety/kl-guard.ts';
import lagrangianNode, {
  combineAdvantages,
  costToGoAdvantages,
  lagrangianStep,
  PidLagrangian,
} from '../../nodes/safety/lagrangian.ts';
import monitorNode, { mannKendall, normalCdf } from '../../nodes/safety/reward-hacking-monitor.ts';
import type { TextCompletion, TextPolicy, TextTrajectories } from '../../nodes/text-contracts.ts';
import type { NodeContext, NodeInstance } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const gridOptions = {
  width: 5,
  height: 5,
  start: 0,
  goal: 24,
  exploit: 12,
  goalReward: 1,
  exploitReward: 2,
  exploitTrueReward: -1,
  stepReward: 0,
  maxSteps: 30,
};

describe('env.safety-gridworld', () => {
  it('pays the exploit in training reward, harms the true objective and charges a cost', () => {
    const env = new SafetyGridworldVector('env', 1, gridOptions);
    // down, down, right: cell 0 -> 5 -> 10 -> 11, nothing happens yet.
    for (const a of [2, 2, 1]) {
      const s = env.step(Int32Array.from([a]));
      expect([s.rewards[0], s.trueRewards![0], s.costs![0], s.terminated[0]]).toEqual([0, 0, 0, 0]);
    }
    expect(env.cells[0]).toBe(11);
    // From cell 11 only "right" (1) enters the exploit at 12.
    expect(Array.from(env.unsafeActions())).toEqual([0, 1, 0, 0]);
    const s = env.step(Int32Array.from([1]));
    expect([s.rewards[0], s.trueRewards![0], s.costs![0], s.terminated[0]]).toEqual([2, -1, 1, 1]);
    expect(s.finalObservations[12]).toBe(1);
    expect(env.cells[0]).toBe(0);
    expect(env.observations()[0]).toBe(1);
    expect(env.metrics()).toEqual({
      violations: 1,
      violation_rate: 1,
      goal_rate: 0,
      episode_true_return_mean: -1,
    });
  });

  it('pays the goal in both rewards, keeps walls, truncates at the time limit', () => {
    const env = new SafetyGridworldVector('env', 1, { ...gridOptions, maxSteps: 9 });
    env.step(Int32Array.from([0])); // wall: stays in cell 0
    expect(env.cells[0]).toBe(0);
    let s = env.step(Int32Array.from([1]));
    for (const a of [1, 1, 1, 2, 2, 2]) s = env.step(Int32Array.from([a]));
    expect(env.cells[0]).toBe(19);
    s = env.step(Int32Array.from([2]));
    expect([s.rewards[0], s.trueRewards![0], s.costs![0], s.terminated[0], s.truncated[0]]).toEqual([
      1, 1, 0, 1, 0,
    ]);
    for (let k = 0; k < 8; k++) s = env.step(Int32Array.from([3]));
    expect(s.truncated[0]).toBe(0);
    s = env.step(Int32Array.from([3]));
    expect([s.terminated[0], s.truncated[0]]).toEqual([0, 1]);
    expect(env.metrics()).toMatchObject({ violations: 0, goal_rate: 0.5, episode_true_return_mean: 0.5 });
  });
});

describe('Lagrangian multiplier and advantage combination', () => {
  it('gradient form: lambda <- max(0, lambda + eta (Jc - d))', () => {
    expect(lagrangianStep(0.5, 2, 0.5, 0.1)).toBeCloseTo(0.65, 12); // 0.5 + 0.1 * 1.5
    expect(lagrangianStep(0.1, 0, 0.5, 0.5)).toBe(0); // 0.1 - 0.25 < 0
  });

  it('PID form (Stooke et al. 2020) on a hand-computed sequence', () => {
    const pid = new PidLagrangian(0.5, 0.1, 1);
    // Jc = 2, d = 1: delta 1, I 1, D 0 -> 0.5 + 0.1 = 0.6
    expect(pid.update(2, 1)).toBeCloseTo(0.6, 12);
    // Jc = 3: delta 2, I 3, D 1 -> 1 + 0.3 + 1 = 2.3
    expect(pid.update(3, 1)).toBeCloseTo(2.3, 12);
    // Jc = 1: delta 0, I 3, D max(0, -2) = 0 -> 0.3
    expect(pid.update(1, 1)).toBeCloseTo(0.3, 12);
    // Jc = 0: delta -1, I 2, D 0 -> -0.5 + 0.2 < 0 -> 0
    expect(pid.update(0, 1)).toBe(0);
    expect(pid.integral).toBe(2);
  });

  it('combines (A_r - lambda A_c) / (1 + lambda)', () => {
    const reward = Float32Array.from([1, -2, 0.5]);
    const cost = Float32Array.from([0.5, 1, -1]);
    expect(Array.from(combineAdvantages(reward, cost, 1))).toEqual([0.25, -1.5, 0.75]);
    expect(Array.from(combineAdvantages(reward, cost, 0))).toEqual([1, -2, 0.5]);
  });

  it('cost-to-go advantages cut at episode ends and centred', () => {
    const batch = tinyBatch({ costs: [0, 1, 0, 1], terminated: [0, 1, 0, 0] });
    // gamma 0.5, backwards: t3 1; t2 0.5; t1 (ends) 1; t0 0.5; mean 0.75
    expect(Array.from(costToGoAdvantages(batch, batch.costs!, 0.5))).toEqual([-0.25, 0.25, -0.25, 0.25]);
  });

  it('node: estimates J_c from ended episodes, updates lambda first, then combines', async () => {
    const node = (await lagrangianNode.create(
      lagrangianNode.params.parse({ costLimit: 0.5, lambdaLr: 0.5, lambdaInit: 0 }),
      context('lag'),
    )) as NodeInstance;
    // One env, 4 steps: an episode with cost 1 ends at t1; the second (cost 1 so far) is still running.
    const batch = tinyBatch({ costs: [0, 1, 0, 1], terminated: [0, 1, 0, 0] });
    const rewardAdvantages = {
      advantages: Float32Array.from([1, 1, 1, 1]),
      returns: Float32Array.from([5, 6, 7, 8]),
    };
    const costAdvantages = { advantages: Float32Array.from([1, 0, -1, 2]), returns: new Float32Array(4) };
    const out = await node.step!({ trajectories: batch, rewardAdvantages, costAdvantages }, info(0));
    // J_c = 1 (one episode), lambda = max(0, 0 + 0.5 (1 - 0.5)) = 0.25
    expect(out.metrics).toMatchObject({ lambda: 0.25, episode_cost: 1, constraint_gap: 0.5, episodes: 1 });
    const adv = out.outputs!.advantages as { advantages: Float32Array; returns: Float32Array };
    // (1 - 0.25 * [1, 0, -1, 2]) / 1.25
    for (const [i, x] of [0.6, 0.8, 1, 0.4].entries()) expect(adv.advantages[i]).toBeCloseTo(x, 6);
    expect(adv.returns).toBe(rewardAdvantages.returns);
    // Next batch: the running episode ends at t0 with cost 1 + 1 = 2: lambda = 0.25 + 0.5 * 1.5 = 1.
    const next = tinyBatch({ costs: [1, 0, 0, 0], terminated: [1, 0, 0, 0] });
    const out2 = await node.step!({ trajectories: next, rewardAdvantages, costAdvantages }, info(1));
    expect(out2.metrics).toMatchObject({ lambda: 1, episode_cost: 2 });
    const saved = (await node.saveState!()) as { json: { lambda: number } };
    expect(saved.json.lambda).toBe(1);
  });
});

describe('reward-hacking monitor: Mann-Kendall trend test', () => {
  it('matches hand-computed S, Var(S), Z and p', () => {
    // [1, 2, 3, 4]: S = 6, Var = 4*3*13/18 = 8.6667, Z = 5/sqrt(8.6667) = 1.69842, p_up = 0.044715
    const up = mannKendall([1, 2, 3, 4]);
    expect(up.s).toBe(6);
    expect(up.variance).toBeCloseTo(8.666667, 5);
    expect(up.z).toBeCloseTo(1.698416, 5);
    expect(up.pUp).toBeCloseTo(0.044715, 5);
    // Ties [1, 1, 2]: S = 0 + 1 + 1 = 2, Var = (66 - 2*1*9) / 18 = 2.6667, Z = 1/sqrt(2.6667) = 0.61237
    const tied = mannKendall([1, 1, 2]);
    expect(tied.s).toBe(2);
    expect(tied.variance).toBeCloseTo(2.666667, 5);
    expect(tied.z).toBeCloseTo(0.612372, 5);
    // [3, 1, 2, 0]: S = -4, Z = -3/sqrt(8.6667) = -1.01905, p_down = 0.154090
    const down = mannKendall([3, 1, 2, 0]);
    expect(down.s).toBe(-4);
    expect(down.z).toBeCloseTo(-1.019049, 5);
    expect(down.pDown).toBeCloseTo(0.15409, 5);
    expect(mannKendall([2, 2, 2, 2]).z).toBe(0);
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.96)).toBeCloseTo(0.975002, 6);
  });

  it('fires (finding + pause) when reward rises while the true objective falls, not when both rise', async () => {
    const monitor = (await monitorNode.create(
      monitorNode.params.parse({ window: 6, alpha: 0.05 }),
      context('monitor'),
    )) as NodeInstance;
    // Six iterations, reward per step 0.1..0.6 rising, true reward per step falling 0.5..0.
    const outs = [];
    for (let k = 0; k < 6; k++) {
      const batch = tinyBatch({
        rewards: [0.1 * (k + 1), 0.1 * (k + 1)],
        trueRewards: [0.5 - 0.1 * k, 0.5 - 0.1 * k],
      });
      outs.push(await monitor.step!({ trajectories: batch }, info(k + 10)));
    }
    expect(outs.slice(0, 5).every((o) => !o.findings && !o.pause)).toBe(true);
    const last = outs[5];
    // n = 6, S = +-15, Var = 6*5*17/18 = 28.333, |Z| = 14/5.3229 = 2.6301, p = 0.00427 < 0.05 each
    expect(last.metrics?.reward_trend_z).toBeCloseTo(2.63, 3);
    expect(last.metrics?.check_trend_z).toBeCloseTo(-2.63, 3);
    expect(last.pause?.reason).toMatch(/reward hacking/);
    expect(last.findings?.[0].severity).toBe('critical');
    expect(last.findings?.[0].evidence).toMatchObject({
      iterations: '10-15',
      reward_first: 0.1,
      reward_last: 0.6,
      check_first: 0.5,
      check_last: 0,
      reward_s: 15,
      check_s: -15,
    });

    const calm = (await monitorNode.create(
      monitorNode.params.parse({ window: 6, alpha: 0.05 }),
      context('m2'),
    )) as NodeInstance;
    for (let k = 0; k < 8; k++) {
      const batch = tinyBatch({ rewards: [0.1 * k, 0.1 * k], trueRewards: [0.1 * k, 0.1 * k] });
      const out = await calm.step!({ trajectories: batch }, info(k));
      expect(out.pause).toBeUndefined();
    }
  });

  it('text batches: mean episode reward against the verified success rate', async () => {
    const monitor = (await monitorNode.create(
      monitorNode.params.parse({ window: 4, alpha: 0.05 }),
      context('monitor'),
    )) as NodeInstance;
    const episode = (reward: number, success: boolean) =>
      ({
        reward,
        success,
        turns: [],
        turnRewards: [],
        formatErrors: 0,
        toolCalls: 0,
      }) as unknown as TextTrajectories['episodes'][number];
    const out = await monitor.step!(
      { trajectories: { kind: 'text', episodes: [episode(1, true), episode(0.5, false)], groups: [[0, 1]] } },
      info(0),
    );
    expect(out.metrics).toMatchObject({ reward_rate: 0.75, check_rate: 0.5 });
  });
});

describe('safety.action-filter rules', () => {
  const defaults: ActionFilterParams = {
    denyActions: [],
    allowActions: [],
    useEnvUnsafeMask: false,
    observationRules: [],
    denyTools: [],
    allowTools: [],
    denyPatterns: [],
    effect: 'block',
    substitute: 'resample',
    substituteAction: 0,
    maxResamples: 64,
    substituteText: '',
    penalty: 1,
  };

  it('discrete: deny list, allow list, env mask and observation-feature rules', () => {
    const obs = Float32Array.from([0, 0.7, 0, 0.2]); // two rows of 2 features
    const rules = new DiscreteActionRules({
      denyActions: [3],
      allowActions: [0, 1, 3],
      observationRules: [{ feature: 1, op: '>', value: 0.5, deny: [0] }],
    });
    expect(rules.deniedBy(3, obs, 0)).toBe('deny action 3');
    expect(rules.deniedBy(2, obs, 0)).toBe('action 2 not in allow list');
    expect(rules.deniedBy(0, obs, 0)).toBe('obs[1] > 0.5 denies 0'); // row 0: feature 1 = 0.7
    expect(rules.deniedBy(0, obs, 2)).toBeNull(); // row 1: feature 1 = 0.2
    expect(rules.deniedBy(1, obs, 0)).toBeNull();
    const mask = Uint8Array.from([0, 1, 0, 0, 0, 0, 0, 0]);
    expect(rules.deniedBy(1, obs, 0, mask, 0)).toBe('env unsafe-action mask');
    expect(rules.deniedBy(1, obs, 2, mask, 4)).toBeNull();
  });

  it('text: tool names, allow list and regular expressions', () => {
    expect(toolNames('I will <calc>2+3</calc> then <answer>5</answer>')).toEqual(['calc', 'answer']);
    const rules = new TextActionRules({
      denyTools: ['shell'],
      allowTools: [],
      denyPatterns: ['rm\\s+-rf', 'DROP\\s+TABLE'],
    });
    expect(rules.deniedBy('<shell>ls</shell>')).toBe('deny tool shell');
    expect(rules.deniedBy('<calc>1+1</calc>')).toBeNull();
    expect(rules.deniedBy('run rm  -rf / now')).toBe('pattern /rm\\s+-rf/');
    expect(rules.deniedBy("'; DROP  TABLE users")).toBe('pattern /DROP\\s+TABLE/');
    // A pattern that does not compile is refused when the graph is checked, naming the field.
    const parsed = filterNode.params.safeParse({ denyPatterns: ['(unclosed'] });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({
      path: ['denyPatterns', 0],
      message: 'not a valid regular expression',
    });
    const allow = new TextActionRules({ denyTools: [], allowTools: ['calc', 'answer'], denyPatterns: [] });
    expect(allow.deniedBy('<calc>1</calc><answer>1</answer>')).toBeNull();
    expect(allow.deniedBy('<search>x</search>')).toBe('tool search not in allow list');
  });

  it('blocks by resampling the restricted policy, logs each intervention, keeps log pi of the executed action', () => {
    const rows = 400;
    const env = new SafetyGridworldVector('env', rows, gridOptions);
    env.cells.fill(11); // every copy left of the exploit: action 1 is unsafe
    const base = new FixedPolicy([0.1, 0.7, 0.1, 0.1]);
    const p = { ...defaults, useEnvUnsafeMask: true };
    const gated = new GatedDiscretePolicy('shield', base, new DiscreteActionRules(p), p, env);
    const actions = new Int32Array(rows);
    const logProbs = new Float32Array(rows);
    gated.sampleHost(new Float32Array(rows * 25), rows, new Rng(3), actions, logProbs);
    const log = gated.takeInterventions();
    expect(gated.takeInterventions()).toEqual([]);
    expect(actions.includes(1)).toBe(false);
    expect(log.length).toBeGreaterThan(240); // about 0.7 x 400 = 280 tried the exploit
    expect(log.length).toBeLessThan(320);
    const counts = [0, 0, 0, 0];
    for (const x of log) {
      expect(x).toMatchObject({ rule: 'env unsafe-action mask', action: 1, effect: 'blocked' });
      expect(actions[x.env]).toBe(x.replacement);
      expect(logProbs[x.env]).toBeCloseTo(Math.log(0.1), 6);
      counts[x.replacement as number] += 1;
    }
    // The restricted distribution is uniform over {0, 2, 3}.
    for (const a of [0, 2, 3]) expect(counts[a]).toBeGreaterThan(log.length / 3 - 40);
  });

  it('penalise lets the action run with a penalty; pause blocks it; fixed and fallback replacements', () => {
    const base = new FixedPolicy([0.01, 0.97, 0.01, 0.01]);
    const obs = new Float32Array(2 * 25);
    const run = (p: ActionFilterParams) => {
      const gated = new GatedDiscretePolicy('shield', base, new DiscreteActionRules(p), p);
      const actions = new Int32Array(2);
      const logProbs = new Float32Array(2);
      gated.sampleHost(obs, 2, new Rng(1), actions, logProbs);
      return { actions, logProbs, log: gated.takeInterventions() };
    };
    const penalised = run({ ...defaults, denyActions: [1], effect: 'penalise', penalty: 0.5 });
    expect(Array.from(penalised.actions)).toEqual([1, 1]);
    expect(penalised.log).toEqual([
      { env: 0, rule: 'deny action 1', action: 1, effect: 'penalised', penalty: 0.5 },
      { env: 1, rule: 'deny action 1', action: 1, effect: 'penalised', penalty: 0.5 },
    ]);
    const fixed = run({
      ...defaults,
      denyActions: [1],
      effect: 'pause',
      substitute: 'action',
      substituteAction: 3,
    });
    expect(Array.from(fixed.actions)).toEqual([3, 3]);
    expect(Array.from(fixed.logProbs)).toEqual([0, 0]); // chosen by the gate with probability 1
    expect(fixed.log[0]).toEqual({
      env: 0,
      rule: 'deny action 1',
      action: 1,
      effect: 'paused',
      replacement: 3,
    });
    // A policy that only ever picks the denied action: redraws fail, so a uniform allowed action is
    // recorded with probability 1/|allowed|; the same happens when the fixed replacement is denied too.
    const stubborn = new FixedPolicy([0, 1, 0, 0]);
    for (const p of [
      { ...defaults, denyActions: [1], maxResamples: 3 },
      { ...defaults, denyActions: [1, 3], substitute: 'action' as const, substituteAction: 3 },
    ]) {
      const gated = new GatedDiscretePolicy('shield', stubborn, new DiscreteActionRules(p), p);
      const actions = new Int32Array(50);
      const logProbs = new Float32Array(50);
      gated.sampleHost(new Float32Array(50 * 25), 50, new Rng(2), actions, logProbs);
      const allowed = p.denyActions.length === 1 ? [0, 2, 3] : [0, 2];
      for (let row = 0; row < 50; row++) {
        expect(allowed).toContain(actions[row]);
        expect(logProbs[row]).toBeCloseTo(-Math.log(allowed.length), 6);
      }
      expect(new Set(actions).size).toBe(allowed.length);
      expect(gated.takeInterventions()[0].rule).toBe('deny action 1 (uniform fallback)');
    }
  });

  it('text policy: substitutes a denied turn and logs it', async () => {
    const base: TextPolicy = {
      nodeId: 'llm',
      trainable: false,
      generate: async (contexts) =>
        contexts.map(
          (c): TextCompletion => ({
            text: c === 'a' ? '<shell>rm -rf /</shell>' : '<calc>1+1</calc>',
            finish: 'stop',
          }),
        ),
    };
    const p = { ...defaults, denyTools: ['shell'], substituteText: '<answer>refused</answer>' };
    const gated = new GatedTextPolicy('shield', base, new TextActionRules(p), p);
    const out = await gated.generate(['a', 'b'], { maxNewTokens: 8, temperature: 1, stop: [] }, new Rng(1));
    expect(out.map((c) => c.text)).toEqual(['<answer>refused</answer>', '<calc>1+1</calc>']);
    expect(gated.takeInterventions()).toEqual([
      {
        env: 0,
        rule: 'deny tool shell',
        action: '<shell>rm -rf /</shell>',
        effect: 'blocked',
        replacement: '<answer>refused</answer>',
      },
    ]);
  });
});

describe('safety.kl-guard', () => {
  it('continues under the limit, stops or pauses past it', () => {
    const where = { iteration: 3, epoch: 1, minibatch: 2 };
    const stop = new KlGuard('guard', { maxKl: 0.02, onExceed: 'stop-epoch' });
    expect(stop.afterMinibatch(0.01, where)).toEqual({ action: 'continue' });
    expect(stop.afterMinibatch(0.02, where)).toEqual({ action: 'continue' });
    const verdict = stop.afterMinibatch(0.03, where);
    expect(verdict.action).toBe('stop');
    expect(verdict.action !== 'continue' && verdict.reason).toMatch(
      /0\.0300 > limit 0\.02 at iteration 3, epoch 1, minibatch 2/,
    );
    expect(stop.stops).toBe(1);
    const pause = new KlGuard('guard', { maxKl: 0.02, onExceed: 'pause' });
    expect(pause.afterMinibatch(0.5, where).action).toBe('pause');
    expect(() => pause.afterMinibatch(Number.NaN, where)).toThrow(/guard\.approxKl is not finite/);
  });
});

/** A policy with the same action probabilities in every state. */
class FixedPolicy implements DiscretePolicy {
  readonly nodeId = 'base';
  readonly observationSize = 25;
  readonly numActions: number;
  readonly variables = [];
  constructor(readonly probs: number[]) {
    this.numActions = probs.length;
  }
  logits(observations: tf.Tensor2D): tf.Tensor2D {
    return tf.tile(tf.log(tf.tensor2d([this.probs])), [observations.shape[0], 1]) as tf.Tensor2D;
  }
  async syncHost(): Promise<void> {}
  sampleHost(_obs: Float32Array, count: number, rng: Rng, actions: Int32Array, logProbs: Float32Array): void {
    for (let row = 0; row < count; row++) {
      actions[row] = rng.categorical(this.probs);
      logProbs[row] = Math.log(this.probs[actions[row]]);
    }
  }
}

/** A one-env batch of the given length with only the fields the safety nodes read. */
function tinyBatch(x: {
  costs?: number[];
  terminated?: number[];
  rewards?: number[];
  trueRewards?: number[];
}): VectorTrajectories {
  const steps = (x.costs ?? x.rewards ?? []).length;
  return {
    kind: 'vector',
    numEnvs: 1,
    numSteps: steps,
    observationSize: 1,
    numActions: 4,
    observations: new Float32Array(steps),
    actions: new Int32Array(steps),
    logProbs: new Float32Array(steps),
    rewards: Float32Array.from(x.rewards ?? new Array(steps).fill(0)),
    values: new Float32Array(steps),
    terminated: Uint8Array.from(x.terminated ?? new Array(steps).fill(0)),
    truncated: new Uint8Array(steps),
    truncationValues: new Float32Array(steps),
    lastValues: new Float32Array(1),
    ...(x.costs ? { costs: Float32Array.from(x.costs) } : {}),
    ...(x.trueRewards ? { trueRewards: Float32Array.from(x.trueRewards) } : {}),
  };
}

const info = (iteration: number) => ({ iteration, totalIterations: 100 });
const context = (nodeId: string) =>
  ({ nodeId, label: nodeId, tf, rng: new Rng(1), inputs: {} }) as unknown as NodeContext;
