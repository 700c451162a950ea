/** Family names and colours for the palette and the node headers. */
export const FAMILY_ORDER = [
  'environment',
  'agent',
  'rollout',
  'credit',
  'value',
  'world',
  'safety',
  'trainer',
  'metrics',
] as const;

export const FAMILY_TITLES: Record<string, string> = {
  environment: 'Environments',
  agent: 'Agents and policies',
  rollout: 'Rollout',
  credit: 'Credit assigners',
  value: 'Value models',
  world: 'World models',
  safety: 'Safety gates',
  trainer: 'Trainers',
  metrics: 'Metrics',
};

export const FAMILY_COLORS: Record<string, string> = {
  environment: '#2f9e44',
  agent: '#1971c2',
  rollout: '#e8590c',
  credit: '#f08c00',
  value: '#9c36b5',
  world: '#0c8599',
  safety: '#c92a2a',
  trainer: '#5f3dc4',
  metrics: '#495057',
};

export const familyColor = (family: string | undefined): string => FAMILY_COLORS[family ?? ''] ?? '#868e96';
