import { z } from 'zod';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorStep } from '../contracts.ts';
import { type TypedStateSpec, typedStateHooks } from './typed-state.ts';

const GRAVITY = 9.8;
const CART_MASS = 1.0;
const POLE_MASS = 0.1;
const TOTAL_MASS = CART_MASS + POLE_MASS;
const HALF_LENGTH = 0.5;
const POLE_MASS_LENGTH = POLE_MASS * HALF_LENGTH;
const FORCE = 10.0;
const TAU = 0.02;
const THETA_LIMIT = (12 * 2 * Math.PI) / 360;
const X_LIMIT = 2.4;
const OBS = 4;

/** CartPole-v1 copies in one Float64Array (x, x_dot, theta, theta_dot per copy), as Gymnasium's dynamics. */
export class CartPoleVector implements VectorEnv {
  readonly observationSize = OBS;
  readonly numActions = 2;
  readonly state: Float64Array;
  readonly elapsed: Int32Array;
  private readonly obs: Float32Array;
  private readonly result: VectorStep;

  constructor(
    readonly nodeId: string,
    readonly numEnvs: number,
    readonly maxSteps: number,
    private readonly rng: Rng,
  ) {
    this.state = new Float64Array(numEnvs * OBS);
    this.elapsed = new Int32Array(numEnvs);
    this.obs = new Float32Array(numEnvs * OBS);
    this.result = {
      rewards: new Float32Array(numEnvs),
      terminated: new Uint8Array(numEnvs),
      truncated: new Uint8Array(numEnvs),
      finalObservations: new Float32Array(numEnvs * OBS),
    };
    for (let e = 0; e < numEnvs; e++) this.reset(e);
  }

  private reset(e: number): void {
    for (let k = 0; k < OBS; k++) this.state[e * OBS + k] = this.rng.uniform(-0.05, 0.05);
    this.elapsed[e] = 0;
  }

  observations(): Float32Array {
    for (let i = 0; i < this.state.length; i++) this.obs[i] = this.state[i];
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards, terminated, truncated, finalObservations } = this.result;
    const s = this.state;
    for (let e = 0; e < this.numEnvs; e++) {
      const o = e * OBS;
      const x = s[o];
      const xDot = s[o + 1];
      const theta = s[o + 2];
      const thetaDot = s[o + 3];
      const force = actions[e] === 1 ? FORCE : -FORCE;
      const cos = Math.cos(theta);
      const sin = Math.sin(theta);
      const temp = (force + POLE_MASS_LENGTH * thetaDot * thetaDot * sin) / TOTAL_MASS;
      const thetaAcc =
        (GRAVITY * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - (POLE_MASS * cos * cos) / TOTAL_MASS));
      const xAcc = temp - (POLE_MASS_LENGTH * thetaAcc * cos) / TOTAL_MASS;
      s[o] = x + TAU * xDot;
      s[o + 1] = xDot + TAU * xAcc;
      s[o + 2] = theta + TAU * thetaDot;
      s[o + 3] = thetaDot + TAU * thetaAcc;
      this.elapsed[e] += 1;
      rewards[e] = 1;
      const fell = Math.abs(s[o]) > X_LIMIT || Math.abs(s[o + 2]) > THETA_LIMIT;
      terminated[e] = fell ? 1 : 0;
      truncated[e] = !fell && this.elapsed[e] >= this.maxSteps ? 1 : 0;
      if (fell || truncated[e]) {
        for (let k = 0; k < OBS; k++) finalObservations[o + k] = s[o + k];
        this.reset(e);
      }
    }
    return this.result;
  }

  /** What a checkpoint keeps: every copy's physical state and episode clock. */
  checkpointState(): TypedStateSpec {
    return { arrays: { state: this.state, elapsed: this.elapsed }, sizedBy: 'numEnvs' };
  }
}

export default defineNode({
  type: 'env.cartpole',
  family: 'environment',
  title: 'CartPole',
  summary: 'Balance a pole on a cart (CartPole-v1), vectorised copies.',
  doc: `Classic control task (Barto, Sutton & Anderson 1983), with the dynamics and limits of Gymnasium's
CartPole-v1: a cart on a track, a pole hinged on it; actions push left or right with force 10 N.

- Observation: [x, x_dot, theta, theta_dot]; start state uniform in [-0.05, 0.05].
- Reward +1 every step, including the last one.
- **Terminates** when |x| > 2.4 or |theta| > 12 deg; **truncates** at \`maxSteps\` (500): a time limit, not a
  terminal state, so credit assigners bootstrap from the final observation.
- Euler integration with tau = 0.02 s. Copies reset automatically when their episode ends.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      provides: { observation: 'vector', action: 'discrete' },
    },
  ],
  params: z.object({
    numEnvs: z.number().int().min(1).max(4096).default(4).describe('Copies stepped together'),
    maxSteps: z.number().int().min(1).max(100_000).default(500).describe('Time limit per episode'),
  }),
  keyParams: ['numEnvs'],
  create(params, ctx) {
    const env = new CartPoleVector(ctx.nodeId, params.numEnvs, params.maxSteps, ctx.rng);
    return {
      components: { env },
      ...typedStateHooks(ctx.nodeId, env.checkpointState()),
    };
  },
});
