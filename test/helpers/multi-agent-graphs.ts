/** Multi-agent test graphs: the matrix games under independent, centralised-critic, COMA and joint learners. */
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { graphEdge as edge, graphNode as node } from './graphs.ts';

export type MatrixLearner = 'ippo' | 'mappo' | 'coma' | 'joint';

/**
 * Two agents (own linear-softmax policies) on a matrix game, trained by trainer.ppo:
 * - ippo: a decentralised critic V(o^i) and GAE (independent PPO);
 * - mappo: a centralised critic V(s) and GAE;
 * - coma: the counterfactual baseline of credit.counterfactual, no critic in the trainer;
 * - joint: one centralised controller over the 9 joint actions (the fully centralised baseline).
 */
export function matrixGameGraph(
  learner: MatrixLearner,
  options: { iterations: number; game?: 'climbing' | 'penalty'; lr?: number },
): GraphFile {
  const policies = learner === 'joint' ? ['policy0'] : ['policy0', 'policy1'];
  const nodes = [
    node(
      'env',
      'env.matrix-game',
      {
        numEnvs: 64,
        game: options.game ?? 'climbing',
        control: learner === 'joint' ? 'joint' : 'independent',
      },
      0,
    ),
    ...policies.map((p, i) => node(p, 'agent.mlp-policy', { hidden: [] }, 300, i * 150)),
    node('rollout', 'rollout.multi-agent', { stepsPerEnv: 8, window: 512 }, 600),
    node(
      'ppo',
      'trainer.ppo',
      { lr: options.lr ?? 3e-3, epochs: 4, minibatches: 4, entropyCoef: 0.01, annealLr: false },
      1200,
    ),
  ];
  const edges = [
    edge('env', 'env', 'rollout', 'env'),
    ...policies.flatMap((p) => [
      edge('env', 'env', p, 'env'),
      edge(p, 'policy', 'rollout', 'policy'),
      edge(p, 'policy', 'ppo', 'policy'),
    ]),
    edge('rollout', 'trajectories', 'ppo', 'trajectories'),
  ];
  if (learner === 'coma') {
    nodes.push(node('coma', 'credit.counterfactual', { hidden: [32], criticLr: 1e-2 }, 900));
    edges.push(
      edge('env', 'env', 'coma', 'env'),
      edge('rollout', 'trajectories', 'coma', 'trajectories'),
      ...policies.map((p) => edge(p, 'policy', 'coma', 'policy')),
      edge('coma', 'advantages', 'ppo', 'advantages'),
    );
  } else {
    const critic = learner === 'mappo' ? 'value.centralised' : 'value.mlp';
    nodes.push(node('value', critic, { hidden: [16] }, 300, 300));
    nodes.push(node('gae', 'credit.gae', { gamma: 0.99, lambda: 0.95 }, 900));
    edges.push(
      edge('env', 'env', 'value', 'env'),
      edge('value', 'value', 'rollout', 'value'),
      edge('value', 'value', 'ppo', 'value'),
      edge('rollout', 'trajectories', 'gae', 'trajectories'),
      edge('gae', 'advantages', 'ppo', 'advantages'),
    );
  }
  return {
    format: 'agent-rl-studio/graph',
    version: 1,
    name: `${options.game ?? 'climbing'} game, ${learner}`,
    seed: 1,
    run: { iterations: options.iterations, checkpointEvery: 0, backend: 'wasm' },
    nodes,
    edges,
  } as GraphFile;
}
