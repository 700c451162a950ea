/**
 * Port types: what may flow along a wire. Pure data and one pure check, shared by the compiler and the
 * canvas so that a wire refused in one is refused in the other, with the same reason.
 */
export type PortKind = 'component' | 'stream';

export interface PortTypeInfo {
  name: string;
  kind: PortKind;
  color: string;
  doc: string;
}

export const PORT_TYPES: Record<string, PortTypeInfo> = {
  Env: { name: 'Env', kind: 'component', color: '#2f9e44', doc: 'An environment (vectorised copies).' },
  Policy: { name: 'Policy', kind: 'component', color: '#1971c2', doc: 'A policy that acts in an Env.' },
  ValueFn: { name: 'ValueFn', kind: 'component', color: '#9c36b5', doc: 'A state-value function V(s).' },
  Trajectories: {
    name: 'Trajectories',
    kind: 'stream',
    color: '#e8590c',
    doc: 'Experience collected this iteration.',
  },
  Advantages: {
    name: 'Advantages',
    kind: 'stream',
    color: '#f08c00',
    doc: 'Per-step advantages and return targets.',
  },
  Metrics: { name: 'Metrics', kind: 'stream', color: '#495057', doc: 'Scalars published each iteration.' },
  Guard: {
    name: 'Guard',
    kind: 'component',
    color: '#c92a2a',
    doc: 'A safety guard a trainer consults during its update (e.g. a KL limit).',
  },
};

/** One side of a wire as the catalog describes it. */
export interface PortSpec {
  name: string;
  type: string;
  title?: string;
  doc?: string;
  /** Inputs only: the run cannot build without it (default true). */
  required?: boolean;
  /** Inputs only: accepts several wires (the node receives an array). */
  multiple?: boolean;
  /** Outputs: facts about what is produced, e.g. {observation: 'vector', action: 'discrete'}. */
  provides?: Record<string, string>;
  /** Inputs: facts the producer must state, each with the values accepted. */
  accepts?: Record<string, string[]>;
}

/**
 * Facts about agents: a multi-agent Env (each agent its own observation, a global state for centralised
 * critics) and the Trajectories collected from it provide `agents: 'multi'`; multi-agent inputs accept
 * only that, so a single-agent Env, which states no `agents`, is refused with the reason below.
 */
export const MULTI_AGENT_FACTS: Record<string, string> = { agents: 'multi' };

/** Plain words added to the reason a wire is refused for a missing or wrong fact. */
export const FACT_HINTS: Record<string, string> = {
  agents:
    'a multi-agent node needs an environment with several agents and a global state, such as env.cooperative-meet or env.matrix-game, or what a multi-agent rollout collected',
  learns:
    'an in-context trainer needs a policy that learns from a memory of episodes in its prompt, such as agent.llm-remote; a trainable transformer learns with trainer.grpo or trainer.sft',
};

/** Why a wire from `output` to `input` is refused, or null when it fits. */
export function wireMismatch(output: PortSpec, input: PortSpec): string | null {
  if (output.type !== input.type) {
    return `a ${output.type} output cannot feed a ${input.type} input`;
  }
  for (const [fact, allowed] of Object.entries(input.accepts ?? {})) {
    const value = output.provides?.[fact];
    if (value === undefined || !allowed.includes(value)) {
      const hint = FACT_HINTS[fact] ? ` (${FACT_HINTS[fact]})` : '';
      return `${input.type} with ${fact} '${value ?? 'unspecified'}' does not fit; this input needs ${fact} ${allowed.map((a) => `'${a}'`).join(' or ')}${hint}`;
    }
  }
  return null;
}
