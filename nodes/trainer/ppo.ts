import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import {
  HostMlpPass,
  type HostPpoMinibatch,
  type HostPpoOptions,
  ppoLossHost,
} from '../../src-main/engine/nn/host-ppo.ts';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode, NodeError, type Tf } from '../../src-main/engine/node-api.ts';
import type {
  Advantages,
  DiscretePolicy,
  GuardVerdict,
  UpdateGuard,
  ValueFunction,
  VectorTrajectories,
} from '../contracts.ts';
import { isTextValueFunction, isTrainableTextPolicy, type TextPolicy } from '../text-contracts.ts';
import { PpoBatchLayout } from './multi-agent-ppo.ts';
import { createTextPpo } from './text-ppo.ts';

export interface PpoLossInputs {
  logits: TF.Tensor2D;
  actions: TF.Tensor1D;
  oldLogProbs: TF.Tensor1D;
  advantages: TF.Tensor1D;
  values?: TF.Tensor1D;
  oldValues?: TF.Tensor1D;
  returns?: TF.Tensor1D;
}

export interface PpoLossOptions {
  clip: number;
  clipValueLoss: boolean;
  entropyCoef: number;
  valueCoef: number;
}

/** The PPO loss and its diagnostics, as scalars: [loss, policy, value, entropy, approxKl, clipFraction]. */
export function ppoLoss(tf: Tf, x: PpoLossInputs, o: PpoLossOptions): TF.Scalar[] {
  const logAll = tf.logSoftmax(x.logits);
  const oneHot = tf.oneHot(x.actions, x.logits.shape[1]);
  const newLogProbs = tf.sum(tf.mul(logAll, oneHot), 1);
  const entropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(logAll), logAll), 1))) as TF.Scalar;
  const logRatio = tf.sub(newLogProbs, x.oldLogProbs);
  const ratio = tf.exp(logRatio);
  const unclipped = tf.mul(tf.neg(x.advantages), ratio);
  const clipped = tf.mul(tf.neg(x.advantages), tf.clipByValue(ratio, 1 - o.clip, 1 + o.clip));
  const policyLoss = tf.mean(tf.maximum(unclipped, clipped)) as TF.Scalar;
  let valueLoss = tf.scalar(0);
  if (x.values && x.returns && x.oldValues) {
    const err = tf.square(tf.sub(x.values, x.returns));
    if (o.clipValueLoss) {
      const vClipped = tf.add(x.oldValues, tf.clipByValue(tf.sub(x.values, x.oldValues), -o.clip, o.clip));
      const errClipped = tf.square(tf.sub(vClipped, x.returns));
      valueLoss = tf.mul(0.5, tf.mean(tf.maximum(err, errClipped))) as TF.Scalar;
    } else {
      valueLoss = tf.mul(0.5, tf.mean(err)) as TF.Scalar;
    }
  }
  const loss = tf.add(
    tf.sub(policyLoss, tf.mul(o.entropyCoef, entropy)),
    tf.mul(o.valueCoef, valueLoss),
  ) as TF.Scalar;
  const approxKl = tf.mean(tf.sub(tf.sub(ratio, 1), logRatio)) as TF.Scalar;
  const clipFraction = tf.mean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), o.clip), 'float32')) as TF.Scalar;
  return [loss, policyLoss, valueLoss, entropy, approxKl, clipFraction];
}

/** Normalise to zero mean and unit (unbiased) standard deviation, as PyTorch's x.std(). */
export function normalise(values: Float32Array): Float32Array {
  const n = values.length;
  let mean = 0;
  for (const v of values) mean += v;
  mean /= n;
  let sq = 0;
  for (const v of values) sq += (v - mean) * (v - mean);
  const std = Math.sqrt(sq / Math.max(1, n - 1));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (values[i] - mean) / (std + 1e-8);
  return out;
}

export function explainedVariance(predicted: Float32Array, target: Float32Array): number {
  const variance = (xs: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < xs.length; i++) m += xs[i];
    m /= xs.length;
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
    return s / xs.length;
  };
  const residual = target.map((t, i) => t - predicted[i]);
  const v = variance(target);
  return v === 0 ? 0 : 1 - variance(residual) / v;
}

const params = z.object({
  lr: z.number().positive().max(1).default(2.5e-4).describe('Adam learning rate'),
  annealLr: z.boolean().default(true).describe('Decay the learning rate linearly to 0 over the run'),
  epochs: z.number().int().min(1).max(1000).default(4).describe('Passes over each batch'),
  minibatches: z.number().int().min(1).max(100_000).default(4).describe('Minibatches per epoch'),
  clip: z.number().positive().max(10).default(0.2).describe('Ratio clip epsilon'),
  clipValueLoss: z.boolean().default(true),
  entropyCoef: z.number().min(0).max(10).default(0.01),
  valueCoef: z.number().min(0).max(100).default(0.5),
  maxGradNorm: z.number().positive().max(1e6).default(0.5).describe('Global gradient-norm clip'),
  normaliseAdvantages: z.boolean().default(true).describe('Per-minibatch advantage normalisation'),
  targetKl: z
    .number()
    .min(0)
    .max(100)
    .default(0)
    .describe('Stop the epochs early past this approx KL (0 = off)'),
  adamEpsilon: z.number().positive().max(1).default(1e-5),
  updateOn: z
    .enum(['auto', 'host', 'tensor'])
    .default('auto')
    .describe(
      'Where the update runs: host loops (same math, no per-op overhead) or TensorFlow.js ops; auto = host for one MLP actor and critic under 100k parameters',
    ),
  klCoef: z
    .number()
    .min(0)
    .max(10)
    .default(0)
    .describe('Text agents: KL penalty to the reference policy in the loss (k3, beta; 0 = off)'),
  resetReference: z
    .boolean()
    .default(true)
    .describe('Text agents: make the reference the current weights when RL starts (the SFT model)'),
  valueLr: z
    .number()
    .min(0)
    .max(1)
    .default(0)
    .describe('Text agents: Adam learning rate of the value head (0 = lr)'),
});

/** Below this many parameters (actor + critic) the host update beats tfjs's per-op overhead. */
export const HOST_UPDATE_MAX_PARAMETERS = 100_000;

/** The actor and critic MLPs when the update can run on the host, else undefined. */
export function hostUpdateNets(
  choice: 'auto' | 'host' | 'tensor',
  policies: DiscretePolicy[],
  value: ValueFunction | undefined,
): { actor: Mlp; critic?: Mlp } | undefined {
  if (choice === 'tensor' || policies.length !== 1) return undefined;
  const actor = (policies[0] as { net?: unknown }).net;
  const critic = (value as { net?: unknown } | undefined)?.net;
  if (!(actor instanceof Mlp)) return undefined;
  if (value && (value.input === 'state' || !(critic instanceof Mlp) || critic.outputSize !== 1))
    return undefined;
  const criticNet = critic instanceof Mlp ? critic : undefined;
  const size = actor.parameterCount + (criticNet?.parameterCount ?? 0);
  if (choice === 'auto' && size > HOST_UPDATE_MAX_PARAMETERS) return undefined;
  return { actor, critic: criticNet };
}

export default defineNode({
  type: 'trainer.ppo',
  family: 'trainer',
  title: 'PPO',
  summary: 'Proximal Policy Optimisation with clipped surrogate, value and entropy terms.',
  doc: `Proximal Policy Optimization (Schulman, Wolski, Dhariwal, Radford & Klimov 2017), clipped variant:

  L = E[ min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t) ] - c_v L_V + c_e H[pi],  rho_t = pi(a_t|s_t) / pi_old(a_t|s_t)

with the value loss clipped around the old value, L_V = 0.5 max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2),
advantages normalised per minibatch, the global gradient norm clipped, Adam (eps 1e-5) with the learning
rate annealed linearly to 0, several epochs of shuffled minibatches per batch, and an optional early stop
when approx KL (Schulman's k3 estimator, E[(rho - 1) - log rho]) passes \`targetKl\`. Defaults are those of
the common single-file PPO (Huang et al. 2022, "The 37 implementation details of PPO").

Multi-agent batches (rollout.multi-agent, one row per agent): with one shared policy or one policy per
agent (each trained on its own agent's rows) this is independent PPO (IPPO, de Witt et al. 2020); with a
centralised critic (value.centralised), whose V(s) is fitted on the batch's global states, it is MAPPO
(Yu et al. 2022).

For small networks (one MLP actor and an MLP critic, under 100k parameters; \`updateOn\`) the update runs
on the host: forward pass, the loss's exact gradient and backprop in float32 WebAssembly SIMD kernels
(the tanh is Eigen's rational approximation, as TensorFlow's CPU kernels use), Adam on host copies
of the weights, written back to the variables once per batch. Same math as the TensorFlow.js path (tested
to agree within float32 rounding); it avoids the fixed per-op cost that dominates tiny networks.

Metrics: policy_loss, value_loss, entropy, approx_kl, clip_fraction, explained_variance, grad_norm, lr.
With a \`guard\` wired (e.g. \`safety.kl-guard\`), each minibatch's approx KL is passed to it and it may stop
the update or pause the run (metric \`guard_stop\`).

**Text agents** (PPO for language models: Stiennon et al. 2020; Ouyang et al. 2022, InstructGPT; Huang et
al. 2024, "The N+ Implementation Details of RLHF with PPO"): with a trainable text policy (\`agent.llm\`),
text trajectories (\`rollout.group\`), per-token advantages and return targets from \`credit.token-gae\`
and a value head (\`value.llm-head\`) on \`value\`, every agent token is an action:

  L = sum_t m_t [ max(-A_t rho_t, -A_t clip(rho_t, 1-eps, 1+eps)) + c_v L_V,t - c_e H_t + beta KL_t ] / sum_t m_t

with m the agent-token mask (prompt and tool-reply tokens get no gradient), rho_t = pi(x_t|x_<t) /
pi_old(x_t|x_<t) against the sampling log-probabilities, L_V the clipped value loss of the head against
the returns R_t around the values V_old the advantages were computed with, advantages whitened over the
agent tokens of each minibatch, and KL_t the k3 estimator to the reference copy (\`klCoef\`; the reference
is reset to the current weights at the first update when \`resetReference\`). Minibatches are of whole
episodes; the policy's log-probabilities and the head's values come from one forward pass. The head
has its own Adam at \`valueLr\` (0 = \`lr\`): it starts from nothing while the policy starts from SFT, so
it may learn faster than the policy may move (each optimiser clips its own gradient norm; grad_norm is the
policy's). \`updateOn\` does not apply. Extra metrics: kl (with klCoef > 0), value_clip_fraction, value_lr,
agent_tokens; reward, success, response length, tool-call and format-error rates come from the rollout.`,
  version: 1,
  inputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      accepts: { action: ['discrete', 'text'] },
      // Multi-agent batches: one shared policy, or one per agent (independent PPO).
      multiple: true,
      doc: 'The policy; on a multi-agent batch, one shared policy or one per agent in agent order; or a trainable text agent (agent.llm).',
    },
    {
      name: 'value',
      type: 'ValueFn',
      title: 'Value function',
      required: false,
      doc: 'V(o), or a centralised V(s) (value.centralised) trained on the global states of the batch (MAPPO); for a text agent, a value head (value.llm-head).',
    },
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['vector', 'text'] },
    },
    { name: 'advantages', type: 'Advantages', title: 'Advantages' },
    {
      name: 'guard',
      type: 'Guard',
      title: 'Update guard',
      required: false,
      doc: 'Consulted after each minibatch with its approx KL; may stop the update or pause the run.',
    },
  ],
  outputs: [{ name: 'metrics', type: 'Metrics', title: 'Metrics' }],
  params,
  keyParams: ['lr', 'epochs', 'minibatches', 'clip'],
  trains: true,
  create(p, ctx) {
    const tf = ctx.tf;
    const policies = [ctx.inputs.policy].flat() as DiscretePolicy[];
    const value = ctx.inputs.value as ValueFunction | undefined;
    const guard = ctx.inputs.guard as UpdateGuard | undefined;
    const textPolicies = (policies as unknown as TextPolicy[]).filter(
      (x) => typeof x.generate === 'function',
    );
    if (textPolicies.length > 0) {
      const text = textPolicies[0];
      if (policies.length !== 1 || !isTrainableTextPolicy(text)) {
        throw new NodeError(ctx.nodeId, 'PPO on text needs one trainable text policy (agent.llm)', 'policy');
      }
      if (p.updateOn === 'host') {
        throw new NodeError(ctx.nodeId, "'host' updates are for MLP policies, not text agents", 'updateOn');
      }
      return createTextPpo(p, ctx, text, ctx.inputs.value, guard);
    }
    if (isTextValueFunction(value)) {
      throw new NodeError(ctx.nodeId, 'a text value head needs a text policy (agent.llm)', 'value');
    }
    const variables = [...policies.flatMap((policy) => policy.variables), ...(value?.variables ?? [])];
    const optimiser = new Adam(tf, variables, { beta1: 0.9, beta2: 0.999, epsilon: p.adamEpsilon });
    const hostNets = hostUpdateNets(p.updateOn, policies, value);
    if (p.updateOn === 'host' && !hostNets)
      throw new Error(
        `${ctx.nodeId}.updateOn: 'host' needs one MLP policy and an MLP critic on observations`,
      );

    return {
      async step(streams, info) {
        if ((streams.trajectories as { kind?: string }).kind === 'text') {
          throw new NodeError(ctx.nodeId, 'text trajectories need a text policy (agent.llm)', 'trajectories');
        }
        const batch = streams.trajectories as VectorTrajectories;
        const credit = streams.advantages as Advantages;
        const size = batch.numSteps * batch.numEnvs;
        const d = batch.observationSize;
        const mb = Math.floor(size / p.minibatches);
        if (mb < 1)
          throw new Error(
            `${ctx.nodeId}.minibatches: more minibatches (${p.minibatches}) than samples (${size})`,
          );
        const lr = p.annealLr ? p.lr * (1 - info.iteration / info.totalIterations) : p.lr;
        const mbObs = new Float32Array(mb * d);
        const mbActions = new Int32Array(mb);
        const mbLogProbs = new Float32Array(mb);
        const mbAdvantages = new Float32Array(mb);
        const mbReturns = new Float32Array(mb);
        const mbValues = new Float32Array(mb);
        const layout = new PpoBatchLayout(batch, policies.length, value, ctx.nodeId);
        const mbCritic = layout.centralised ? new Float32Array(mb * layout.criticWidth) : mbObs;
        const sums = new Float64Array(7);
        let updates = 0;
        let stoppedEarly = 0;
        let guardVerdict: Exclude<GuardVerdict, { action: 'continue' }> | undefined;
        const host = hostNets ? await HostUpdate.start(hostNets, mb) : undefined;
        const lossOptions = {
          clip: p.clip,
          clipValueLoss: p.clipValueLoss,
          entropyCoef: p.entropyCoef,
          valueCoef: p.valueCoef,
        };
        try {
          for (let epoch = 0; epoch < p.epochs; epoch++) {
            const order = ctx.rng.permutation(size);
            const epochStats: TF.Tensor[] = [];
            const hostStats: ArrayLike<number>[] = [];
            const gradNorms: number[] = [];
            for (let start = 0; start + mb <= size; start += mb) {
              await ctx.control.point();
              const rows = layout.arrange(order, start, mb);
              for (let k = 0; k < mb; k++) {
                const i = rows[k];
                if (layout.centralised) layout.copyCriticInput(i, mbCritic, k);
                for (let j = 0; j < d; j++) mbObs[k * d + j] = batch.observations[i * d + j];
                mbActions[k] = batch.actions[i];
                mbLogProbs[k] = batch.logProbs[i];
                mbAdvantages[k] = credit.advantages[i];
                mbReturns[k] = credit.returns[i];
                mbValues[k] = batch.values[i];
              }
              const adv = p.normaliseAdvantages ? normalise(mbAdvantages) : mbAdvantages;
              if (host) {
                const stats = host.lossAndGradients(
                  mbObs,
                  {
                    count: mb,
                    actions: mbActions,
                    oldLogProbs: mbLogProbs,
                    advantages: adv,
                    oldValues: mbValues,
                    returns: mbReturns,
                  },
                  lossOptions,
                );
                gradNorms.push(optimiser.applyHost(host.params, host.grads, lr, p.maxGradNorm));
                hostStats.push(stats);
                updates += 1;
                if (guard) {
                  const where = { iteration: info.iteration, epoch, minibatch: hostStats.length - 1 };
                  const verdict = guard.afterMinibatch(stats[3], where);
                  if (verdict.action !== 'continue') {
                    guardVerdict = verdict;
                    break;
                  }
                }
                continue;
              }
              const { grads, diagnostics } = tf.tidy(() => {
                const obs = tf.tensor2d(mbObs, [mb, d]);
                const inputs = {
                  actions: tf.tensor1d(mbActions, 'int32'),
                  oldLogProbs: tf.tensor1d(mbLogProbs),
                  advantages: tf.tensor1d(adv),
                  oldValues: tf.tensor1d(mbValues),
                  returns: tf.tensor1d(mbReturns),
                };
                let kept: TF.Tensor | undefined;
                const result = tf.variableGrads(() => {
                  const parts = ppoLoss(
                    tf,
                    {
                      ...inputs,
                      logits: layout.logits(tf, policies, obs),
                      values: value?.values(
                        layout.centralised ? tf.tensor2d(mbCritic, [mb, layout.criticWidth]) : obs,
                      ),
                    },
                    {
                      clip: p.clip,
                      clipValueLoss: p.clipValueLoss,
                      entropyCoef: p.entropyCoef,
                      valueCoef: p.valueCoef,
                    },
                  );
                  // Kept past the gradient scope, which frees everything else made inside it.
                  kept = tf.keep(tf.stack(parts.slice(1)));
                  return parts[0];
                }, variables);
                return { grads: variables.map((v) => result.grads[v.name]), diagnostics: kept! };
              });
              gradNorms.push(await optimiser.apply(grads, lr, p.maxGradNorm));
              tf.dispose(grads);
              const stats = diagnostics;
              epochStats.push(stats);
              updates += 1;
              if (guard) {
                // One host read per minibatch, paid only when a guard is wired.
                const where = { iteration: info.iteration, epoch, minibatch: epochStats.length - 1 };
                const verdict = guard.afterMinibatch((await stats.data())[3], where);
                if (verdict.action !== 'continue') {
                  guardVerdict = verdict;
                  break;
                }
              }
            }
            const read = host ? hostStats : await Promise.all(epochStats.map((t) => t.data()));
            for (const t of epochStats) t.dispose();
            let epochKl = 0;
            read.forEach((r, i) => {
              for (let k = 0; k < 5; k++) sums[k] += r[k];
              sums[5] += gradNorms[i];
              epochKl += r[3];
            });
            if (p.targetKl > 0 && epochKl / read.length > p.targetKl) {
              stoppedEarly = 1;
              break;
            }
            if (guardVerdict) break;
          }
        } finally {
          // Also on a stop mid-batch, so the variables hold every update Adam has counted.
          host?.finish();
        }
        const mean = (k: number) => sums[k] / Math.max(1, updates);
        return {
          metrics: {
            policy_loss: mean(0),
            value_loss: mean(1),
            entropy: mean(2),
            approx_kl: mean(3),
            clip_fraction: mean(4),
            grad_norm: mean(5),
            explained_variance: explainedVariance(batch.values, credit.returns),
            lr,
            early_stop: stoppedEarly,
            ...(guard ? { guard_stop: guardVerdict ? 1 : 0 } : {}),
          },
          ...(guardVerdict?.action === 'pause' ? { pause: { reason: guardVerdict.reason } } : {}),
        };
      },
      saveState: () => ({ json: { step: optimiser.step }, arrays: optimiser.saveArrays() }),
      loadState(state) {
        optimiser.loadArrays(state.arrays ?? {}, (state.json as { step: number }).step);
      },
      dispose: () => optimiser.dispose(),
    };
  },
});

/** One batch's update on the host: weights read once, written back once (see host-ppo.ts). */
class HostUpdate {
  readonly params: Float32Array[];
  readonly grads: Float32Array[];
  private readonly actorPass: HostMlpPass;
  private readonly criticPass?: HostMlpPass;
  private readonly actorCount: number;

  private constructor(
    private readonly nets: { actor: Mlp; critic?: Mlp },
    params: Float32Array[],
    actorCount: number,
    batch: number,
  ) {
    this.params = params;
    this.actorCount = actorCount;
    this.actorPass = new HostMlpPass(nets.actor.spec.sizes, nets.actor.spec.activation, batch);
    if (nets.critic)
      this.criticPass = new HostMlpPass(nets.critic.spec.sizes, nets.critic.spec.activation, batch);
    // The passes' float32 gradient views, aligned with `params`.
    this.grads = [...this.actorPass.grads, ...(this.criticPass?.grads ?? [])];
  }

  static async start(nets: { actor: Mlp; critic?: Mlp }, batch: number): Promise<HostUpdate> {
    const actor = await nets.actor.readParams();
    const critic = nets.critic ? await nets.critic.readParams() : [];
    return new HostUpdate(nets, [...actor, ...critic], actor.length, batch);
  }

  /** Loss diagnostics [policy, value, entropy, approxKl, clipFraction]; gradients into `grads`. */
  lossAndGradients(
    observations: Float32Array,
    x: HostPpoMinibatch,
    o: HostPpoOptions,
  ): [number, number, number, number, number] {
    const actorParams = this.params.slice(0, this.actorCount);
    const criticParams = this.params.slice(this.actorCount);
    this.actorPass.loadParams(actorParams);
    this.criticPass?.loadParams(criticParams);
    const logits = this.actorPass.forward(observations, x.count);
    const values = this.criticPass?.forward(observations, x.count);
    const stats = ppoLossHost(
      logits,
      this.nets.actor.outputSize,
      values,
      x,
      o,
      this.actorPass.outputGradient(),
      this.criticPass?.outputGradient(),
    );
    this.actorPass.backward(x.count);
    this.criticPass?.backward(x.count);
    return stats;
  }

  finish(): void {
    this.nets.actor.writeParams(this.params.slice(0, this.actorCount));
    this.nets.critic?.writeParams(this.params.slice(this.actorCount));
  }
}
