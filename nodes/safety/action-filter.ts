import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { DiscretePolicy, GatedPolicy, PolicyIntervention, VectorEnv } from '../contracts.ts';
import type { EpisodeFeedback, GenerationOptions, TextCompletion, TextPolicy } from '../text-contracts.ts';

const comparison = z.enum(['>', '>=', '<', '<=', '==', '!=']);
type Comparison = z.infer<typeof comparison>;

const observationRule = z.object({
  feature: z.number().int().min(0).max(1_000_000).describe('Index of the observation feature'),
  op: comparison.describe('Comparison of the feature with `value`'),
  value: z.number().describe('Threshold the feature is compared with'),
  deny: z.array(z.number().int().min(0)).min(1).describe('Actions denied while the condition holds'),
});

const validRegex = (source: string) => {
  try {
    new RegExp(source, 'u');
    return true;
  } catch {
    return false;
  }
};

const params = z.object({
  denyActions: z.array(z.number().int().min(0)).default([]).describe('Discrete actions always denied'),
  allowActions: z
    .array(z.number().int().min(0))
    .default([])
    .describe('If not empty, the only discrete actions allowed'),
  useEnvUnsafeMask: z
    .boolean()
    .default(false)
    .describe("Deny the actions the wired env marks unsafe in each copy's current state"),
  observationRules: z
    .array(observationRule)
    .default([])
    .describe('Deny actions while an observation feature meets a condition'),
  denyTools: z.array(z.string().min(1)).default([]).describe('Text: tool names denied (tags like <name>)'),
  allowTools: z
    .array(z.string().min(1))
    .default([])
    .describe('Text: if not empty, the only tool names allowed'),
  denyPatterns: z
    .array(z.string().min(1).refine(validRegex, 'not a valid regular expression'))
    .default([])
    .describe('Text: regular expressions; a turn that matches one is denied'),
  effect: z
    .enum(['block', 'penalise', 'pause'])
    .default('block')
    .describe(
      'On a hit: substitute an allowed action, let it pass with a reward penalty, or block and pause',
    ),
  substitute: z
    .enum(['resample', 'action'])
    .default('resample')
    .describe('Discrete: redraw from the policy restricted to allowed actions, or use `substituteAction`'),
  substituteAction: z.number().int().min(0).default(0).describe('Discrete: the fixed replacement action'),
  maxResamples: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(64)
    .describe('Redraws from the policy before a uniform choice among the allowed actions'),
  substituteText: z.string().default('').describe('Text: what a blocked turn is replaced with'),
  penalty: z.number().min(0).max(1e6).default(1).describe("Subtracted from the step's reward (penalise)"),
});
export type ActionFilterParams = z.infer<typeof params>;

function compare(x: number, op: Comparison, value: number): boolean {
  switch (op) {
    case '>':
      return x > value;
    case '>=':
      return x >= value;
    case '<':
      return x < value;
    case '<=':
      return x <= value;
    case '==':
      return x === value;
    case '!=':
      return x !== value;
  }
}

/** The discrete-action rules: which rule (if any) denies `action` in an observed state. */
export class DiscreteActionRules {
  private readonly denied: Set<number>;
  private readonly allowed: Set<number> | undefined;

  constructor(readonly p: Pick<ActionFilterParams, 'denyActions' | 'allowActions' | 'observationRules'>) {
    this.denied = new Set(p.denyActions);
    this.allowed = p.allowActions.length ? new Set(p.allowActions) : undefined;
  }

  /**
   * The name of the first rule that denies `action` for the observation at `observations[offset..]`,
   * with `unsafe[maskOffset + action]` the env's unsafe mask when it is consulted; null when allowed.
   */
  deniedBy(
    action: number,
    observations: Float32Array,
    offset: number,
    unsafe?: Uint8Array,
    maskOffset = 0,
  ): string | null {
    if (this.denied.has(action)) return `deny action ${action}`;
    if (this.allowed && !this.allowed.has(action)) return `action ${action} not in allow list`;
    if (unsafe?.[maskOffset + action]) return 'env unsafe-action mask';
    for (const r of this.p.observationRules) {
      if (r.deny.includes(action) && compare(observations[offset + r.feature], r.op, r.value))
        return `obs[${r.feature}] ${r.op} ${r.value} denies ${action}`;
    }
    return null;
  }
}

/** Tool names of a text turn: the opening tags, e.g. `<calc>` in `<calc>2+3</calc>`. */
export function toolNames(text: string): string[] {
  return [...text.matchAll(/<([A-Za-z_][\w.-]*)(?=[\s>/])/g)].map((m) => m[1]);
}

/** The text-action rules: which rule (if any) denies an agent turn. */
export class TextActionRules {
  private readonly patterns: RegExp[];

  constructor(readonly p: Pick<ActionFilterParams, 'denyTools' | 'allowTools' | 'denyPatterns'>) {
    this.patterns = p.denyPatterns.map((source) => new RegExp(source, 'u'));
  }

  deniedBy(text: string): string | null {
    for (const tool of toolNames(text)) {
      if (this.p.denyTools.includes(tool)) return `deny tool ${tool}`;
      if (this.p.allowTools.length && !this.p.allowTools.includes(tool))
        return `tool ${tool} not in allow list`;
    }
    for (const re of this.patterns) if (re.test(text)) return `pattern /${re.source}/`;
    return null;
  }
}

/** A discrete policy behind a shield: samples from the wrapped policy, then enforces the rules. */
export class GatedDiscretePolicy implements DiscretePolicy, GatedPolicy {
  private log: PolicyIntervention[] = [];
  private readonly oneAction = new Int32Array(1);
  private readonly oneLogProb = new Float32Array(1);

  constructor(
    readonly nodeId: string,
    private readonly base: DiscretePolicy,
    private readonly rules: DiscreteActionRules,
    private readonly p: ActionFilterParams,
    private readonly env?: VectorEnv,
  ) {}

  get observationSize(): number {
    return this.base.observationSize;
  }
  get numActions(): number {
    return this.base.numActions;
  }
  get variables(): TF.Variable[] {
    return this.base.variables;
  }
  logits(observations: TF.Tensor2D): TF.Tensor2D {
    return this.base.logits(observations);
  }
  syncHost(): Promise<void> {
    return this.base.syncHost();
  }

  sampleHost(
    observations: Float32Array,
    count: number,
    rng: Rng,
    actions: Int32Array,
    logProbs: Float32Array,
  ): void {
    this.base.sampleHost(observations, count, rng, actions, logProbs);
    const d = this.observationSize;
    const k = this.numActions;
    // The env's mask describes its current copies, so it applies to a batch of exactly those.
    const unsafe =
      this.p.useEnvUnsafeMask && this.env && count === this.env.numEnvs
        ? this.env.unsafeActions?.()
        : undefined;
    for (let row = 0; row < count; row++) {
      const attempted = actions[row];
      const rule = this.rules.deniedBy(attempted, observations, row * d, unsafe, row * k);
      if (rule === null) continue;
      if (this.p.effect === 'penalise') {
        this.log.push({ env: row, rule, action: attempted, effect: 'penalised', penalty: this.p.penalty });
        continue;
      }
      const obs = observations.subarray(row * d, (row + 1) * d);
      const allowed = (a: number) => this.rules.deniedBy(a, obs, 0, unsafe, row * k) === null;
      const replacement = this.replace(rng, obs, allowed);
      actions[row] = replacement.action;
      logProbs[row] = replacement.logProb;
      this.log.push({
        env: row,
        rule: replacement.fallback ? `${rule} (uniform fallback)` : rule,
        action: attempted,
        effect: this.p.effect === 'pause' ? 'paused' : 'blocked',
        replacement: replacement.action,
      });
    }
  }

  takeInterventions(): PolicyIntervention[] {
    const out = this.log;
    this.log = [];
    return out;
  }

  /**
   * An allowed action and the log-probability to record for it. Redraws are exact samples of the
   * restricted policy and keep log pi(a'|s); the fixed and the uniform fallback replacements are not drawn
   * from pi, so they are recorded with the probability the gate chose them with (1, or 1/|allowed|):
   * sampling is synchronous on the host, where the wrapped policy's other log-probabilities are unknown.
   */
  private replace(
    rng: Rng,
    obs: Float32Array,
    allowed: (a: number) => boolean,
  ): { action: number; logProb: number; fallback: boolean } {
    if (this.p.substitute === 'action' && allowed(this.p.substituteAction))
      return { action: this.p.substituteAction, logProb: 0, fallback: false };
    if (this.p.substitute === 'resample') {
      // Rejection sampling draws exactly from pi(a|s) restricted to the allowed actions.
      for (let i = 0; i < this.p.maxResamples; i++) {
        this.base.sampleHost(obs, 1, rng, this.oneAction, this.oneLogProb);
        if (allowed(this.oneAction[0]))
          return { action: this.oneAction[0], logProb: this.oneLogProb[0], fallback: false };
      }
    }
    const candidates: number[] = [];
    for (let a = 0; a < this.numActions; a++) if (allowed(a)) candidates.push(a);
    if (!candidates.length)
      throw new NodeError(
        this.nodeId,
        'every action is denied in this state; relax the rules',
        'denyActions',
      );
    return {
      action: candidates[rng.int(candidates.length)],
      logProb: -Math.log(candidates.length),
      fallback: true,
    };
  }
}

/** A text policy behind a filter: generates with the wrapped policy, then checks each turn. */
export class GatedTextPolicy implements TextPolicy, GatedPolicy {
  private log: PolicyIntervention[] = [];

  constructor(
    readonly nodeId: string,
    private readonly base: TextPolicy,
    private readonly rules: TextActionRules,
    private readonly p: ActionFilterParams,
  ) {}

  get trainable(): boolean {
    return this.base.trainable;
  }

  async generate(contexts: string[], options: GenerationOptions, rng: Rng): Promise<TextCompletion[]> {
    const completions = await this.base.generate(contexts, options, rng);
    return completions.map((completion, row) => {
      const rule = this.rules.deniedBy(completion.text);
      if (rule === null) return completion;
      if (this.p.effect === 'penalise') {
        this.log.push({
          env: row,
          rule,
          action: completion.text,
          effect: 'penalised',
          penalty: this.p.penalty,
        });
        return completion;
      }
      this.log.push({
        env: row,
        rule,
        action: completion.text,
        effect: this.p.effect === 'pause' ? 'paused' : 'blocked',
        replacement: this.p.substituteText,
      });
      // The replacement was not sampled, so it carries no tokens or log-probabilities to train on.
      return { text: this.p.substituteText, finish: 'stop' };
    });
  }

  observeEpisodes(episodes: EpisodeFeedback[]): void {
    this.base.observeEpisodes?.(episodes);
  }

  takeInterventions(): PolicyIntervention[] {
    const out = this.log;
    this.log = [];
    return out;
  }
}

export default defineNode({
  type: 'safety.action-filter',
  family: 'safety',
  title: 'Action filter (shield)',
  summary: 'Wraps a policy; allow/deny rules on discrete or text actions; blocks, penalises or pauses.',
  doc: `A shield between a policy and its environment (Alshiekh et al., AAAI 2018, "Safe Reinforcement
Learning via Shielding": a post-posed shield that corrects unsafe actions). The wrapped policy samples an
action; the rules then decide whether it may run.

**Discrete actions** (wire \`policy\`): an action a is denied in state s when
- a is in \`denyActions\`, or \`allowActions\` is not empty and a is not in it;
- \`useEnvUnsafeMask\` is on and the wired env marks a unsafe in the copy's current state
  (\`VectorEnv.unsafeActions()\`, e.g. the move into the exploit cell of \`env.safety-gridworld\`; it is
  consulted when the policy samples a batch of exactly the env's copies, as the rollout does);
- an observation rule holds: s[feature] op value, with a in its \`deny\` list.

**Text actions** (wire \`textPolicy\`): a turn is denied when one of its tool calls (an opening tag
\`<name>\`) is in \`denyTools\`, or not in a non-empty \`allowTools\`, or the turn matches one of the
\`denyPatterns\` (JavaScript regular expressions, Unicode mode).

**On a hit** (\`effect\`):
- \`block\`: the action is replaced. Discrete, \`resample\`: a' ~ pi(a|s) restricted to allowed actions,
  pi'(a|s) = pi(a|s) 1[a allowed] / sum_b pi(b|s) 1[b allowed], drawn exactly by rejection sampling and
  recorded with log pi(a'|s), so the trainer's ratio pi_theta/pi_old starts at 1 as for any sampled
  action; if \`maxResamples\` redraws are all denied, a' is uniform over the allowed actions.
  \`action\`: the fixed \`substituteAction\` (uniform over the allowed actions where it is denied too). Fixed
  and uniform replacements are recorded with the probability the gate chose them with (1, 1/|allowed|).
  Text: the turn is replaced by \`substituteText\`.
- \`penalise\`: the action runs and \`penalty\` is subtracted from that step's reward (the agent learns
  to avoid it, as in reward shaping by a shield).
- \`pause\`: blocked as above, and the run pauses after the iteration for a person to look.

Every intervention is logged into the trajectory (step, attempted action, rule, effect, replacement)
so the trajectory viewer marks it, and the rollout counts them in its \`interventions\` metric: a gate that
only blocked silently would hide the reward hacking it should reveal.`,
  version: 1,
  inputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Discrete policy',
      required: false,
      accepts: { action: ['discrete'] },
      doc: 'The policy to shield (discrete actions).',
    },
    {
      name: 'textPolicy',
      type: 'Policy',
      title: 'Text policy',
      required: false,
      accepts: { action: ['text'] },
      doc: 'The policy to filter (text actions).',
    },
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      required: false,
      accepts: { observation: ['vector'], action: ['discrete'] },
      doc: "Needed for `useEnvUnsafeMask`: the env's unsafe-action mask.",
    },
  ],
  outputs: [
    { name: 'policy', type: 'Policy', title: 'Shielded policy', provides: { action: 'discrete' } },
    { name: 'textPolicy', type: 'Policy', title: 'Filtered text policy', provides: { action: 'text' } },
  ],
  params,
  keyParams: ['effect', 'useEnvUnsafeMask'],
  create(p, ctx) {
    const discrete = ctx.inputs.policy as DiscretePolicy | undefined;
    const text = ctx.inputs.textPolicy as TextPolicy | undefined;
    const env = ctx.inputs.env as VectorEnv | undefined;
    if (!discrete === !text)
      throw new NodeError(ctx.nodeId, 'wire exactly one of the discrete and text policy inputs', 'policy');
    if (text) {
      return {
        components: { textPolicy: new GatedTextPolicy(ctx.nodeId, text, new TextActionRules(p), p) },
      };
    }
    const base = discrete!;
    if (p.substituteAction >= base.numActions)
      throw new NodeError(
        ctx.nodeId,
        `action ${p.substituteAction} does not exist (${base.numActions} actions)`,
        'substituteAction',
      );
    for (const [field, list] of [
      ['denyActions', p.denyActions],
      ['allowActions', p.allowActions],
    ] as const) {
      const bad = list.find((a) => a >= base.numActions);
      if (bad !== undefined)
        throw new NodeError(ctx.nodeId, `action ${bad} does not exist (${base.numActions} actions)`, field);
    }
    for (const [i, r] of p.observationRules.entries()) {
      if (r.feature >= base.observationSize)
        throw new NodeError(
          ctx.nodeId,
          `feature ${r.feature} is outside the observation (size ${base.observationSize})`,
          `observationRules.${i}.feature`,
        );
    }
    if (p.useEnvUnsafeMask && !env?.unsafeActions)
      throw new NodeError(
        ctx.nodeId,
        env
          ? 'the wired env exposes no unsafe-action mask'
          : 'wire the env input to use its unsafe-action mask',
        'useEnvUnsafeMask',
      );
    const gated = new GatedDiscretePolicy(ctx.nodeId, base, new DiscreteActionRules(p), p, env);
    return { components: { policy: gated } };
  },
});
