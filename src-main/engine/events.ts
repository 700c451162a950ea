/** What a run tells the outside world. Plain JSON so it crosses threads, IPC and WebSockets unchanged. */
export type RunStatus = 'starting' | 'running' | 'paused' | 'stopped' | 'finished' | 'failed';

/** One line of metrics.jsonl, the same in the app, the CLI and exported code. */
export interface MetricsRecord {
  iteration: number;
  envSteps: number;
  seconds: number;
  metrics: Record<string, number>;
}

/** A safety gate's action on one step: what the agent tried, the rule that fired, what was done instead. */
export interface Intervention {
  /** Step index within the episode (vector) or turn index (text). */
  step: number;
  rule: string;
  /** The attempted action: an action index or the text of a tool call. */
  action: number | string;
  /** What happened: 'blocked' (substituted), 'penalised' or 'paused'. */
  effect: 'blocked' | 'penalised' | 'paused';
  replacement?: number | string;
}

/** One turn of a text episode with the credit each of its tokens received. */
export interface TextTurnSample {
  role: 'prompt' | 'agent' | 'tool' | 'env';
  text: string;
  reward?: number;
  /** Agent turns: the token strings and the advantage each received (same length). */
  tokens?: string[];
  credit?: number[];
}

/** An episode sampled for the trajectory viewer, with the credit each step received. */
export type TrajectorySample =
  | {
      kind: 'vector';
      /** The node that assigned the credit. */
      nodeId: string;
      iteration: number;
      /** Which sampled episode of this iteration (0-based). */
      index: number;
      /** Environment copy and agent, where that means something. */
      env?: number;
      agent?: number;
      actions: number[];
      rewards: number[];
      values: number[];
      advantages: number[];
      returns: number[];
      interventions?: Intervention[];
    }
  | {
      kind: 'text';
      nodeId: string;
      iteration: number;
      index: number;
      reward: number;
      success?: boolean;
      turns: TextTurnSample[];
      interventions?: Intervention[];
    };

/** Something a node wants a person to look at: a safety violation, a suspected reward hack. */
export interface Finding {
  nodeId: string;
  iteration: number;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  /** Numbers and short facts that back the finding. */
  evidence: Record<string, number | string>;
}

export type RunEvent =
  | { type: 'status'; status: RunStatus; iteration: number; backend?: string; message?: string }
  | { type: 'metrics'; record: MetricsRecord }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; nodeId?: string }
  | { type: 'error'; message: string; nodeId?: string; field?: string }
  | { type: 'checkpoint'; iteration: number; path: string }
  | { type: 'samples'; iteration: number; samples: TrajectorySample[] }
  | { type: 'finding'; finding: Finding };
