/**
 * Sampled episodes of a chosen iteration. Vector episodes: per-step action, reward, value, advantage and
 * return as aligned sparklines, with a credit strip (each step coloured by its advantage) and safety
 * interventions marked. Text episodes: the transcript turn by turn, each agent token coloured by the
 * credit it received.
 */
import { useEffect, useState } from 'react';
import type { Intervention, TextTurnSample, TrajectorySample } from '../../src-main/engine/events.ts';
import type { RunView } from '../run-state.ts';

/** Background for a credit value: green for positive, red for negative, stronger with |credit| / scale. */
export function creditColor(credit: number, scale: number): string {
  if (!Number.isFinite(credit) || scale <= 0) return 'transparent';
  const strength = Math.min(1, Math.abs(credit) / scale);
  const alpha = (0.08 + 0.62 * strength).toFixed(3);
  return credit >= 0 ? `rgba(22, 163, 74, ${alpha})` : `rgba(220, 38, 38, ${alpha})`;
}

const maxAbs = (values: readonly number[]) =>
  values.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);

const SPARK_WIDTH = 600;
const SPARK_HEIGHT = 36;

function Sparkline({
  label,
  values,
  interventions,
}: {
  label: string;
  values: readonly number[];
  interventions: readonly Intervention[];
}) {
  const n = values.length;
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(0, ...finite);
  const span = hi - lo || 1;
  const x = (i: number) => (n <= 1 ? SPARK_WIDTH / 2 : (i / (n - 1)) * SPARK_WIDTH);
  const y = (v: number) => SPARK_HEIGHT - 2 - ((v - lo) / span) * (SPARK_HEIGHT - 4);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(Number.isFinite(v) ? v : 0).toFixed(1)}`);
  return (
    <div className="spark-row">
      <span className="spark-label">{label}</span>
      <svg
        className="sparkline"
        viewBox={`0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${label} per step`}
      >
        <line x1={0} x2={SPARK_WIDTH} y1={y(0)} y2={y(0)} className="spark-zero" />
        {interventions.map((iv) => (
          <line
            key={`${iv.step}-${iv.rule}`}
            x1={x(iv.step)}
            x2={x(iv.step)}
            y1={0}
            y2={SPARK_HEIGHT}
            className="spark-intervention"
          />
        ))}
        <polyline points={points.join(' ')} className="spark-line" />
      </svg>
      <span className="spark-range">
        {finite.length
          ? `${Math.min(...finite).toPrecision(3)} … ${Math.max(...finite).toPrecision(3)}`
          : '–'}
      </span>
    </div>
  );
}

function InterventionList({ interventions }: { interventions: readonly Intervention[] }) {
  if (!interventions.length) return null;
  return (
    <ul className="interventions" aria-label="interventions">
      {interventions.map((iv) => (
        <li key={`${iv.step}-${iv.rule}`} className={`intervention ${iv.effect}`}>
          step {iv.step}: <strong>{iv.rule}</strong> {iv.effect} {String(iv.action)}
          {iv.replacement !== undefined ? ` → ${String(iv.replacement)}` : ''}
        </li>
      ))}
    </ul>
  );
}

function VectorEpisode({ sample }: { sample: Extract<TrajectorySample, { kind: 'vector' }> }) {
  const interventions = sample.interventions ?? [];
  const scale = maxAbs(sample.advantages);
  const total = sample.rewards.reduce((a, b) => a + b, 0);
  return (
    <div className="vector-episode">
      <p className="hint">
        {sample.rewards.length} steps, total reward {Number(total.toPrecision(6))}
        {sample.env !== undefined ? `, environment copy ${sample.env}` : ''}, credit from {sample.nodeId}
      </p>
      <div className="spark-row">
        <span className="spark-label">credit</span>
        <div className="credit-strip" role="img" aria-label="credit per step">
          {sample.advantages.map((a, i) => (
            <span
              // biome-ignore lint/suspicious/noArrayIndexKey: steps are positions.
              key={i}
              className={`credit-cell${interventions.some((iv) => iv.step === i) ? ' intervened' : ''}`}
              data-credit={a}
              style={{ background: creditColor(a, scale) }}
              title={`step ${i}: action ${sample.actions[i]}, reward ${sample.rewards[i]}, advantage ${a}`}
            />
          ))}
        </div>
        <span className="spark-range">±{scale.toPrecision(3)}</span>
      </div>
      <Sparkline label="action" values={sample.actions} interventions={interventions} />
      <Sparkline label="reward" values={sample.rewards} interventions={interventions} />
      <Sparkline label="value" values={sample.values} interventions={interventions} />
      <Sparkline label="advantage" values={sample.advantages} interventions={interventions} />
      <Sparkline label="return" values={sample.returns} interventions={interventions} />
      <InterventionList interventions={interventions} />
    </div>
  );
}

function TextTurn({ turn, scale, index }: { turn: TextTurnSample; scale: number; index: number }) {
  return (
    <li className={`turn ${turn.role}`}>
      <span className="turn-role">{turn.role}</span>
      {turn.tokens && turn.credit ? (
        <span className="tokens">
          {turn.tokens.map((token, i) => (
            <span
              // biome-ignore lint/suspicious/noArrayIndexKey: tokens are positions.
              key={i}
              className="token"
              data-credit={turn.credit![i]}
              style={{ background: creditColor(turn.credit![i]!, scale) }}
              title={`turn ${index}, token ${i}: credit ${turn.credit![i]}`}
            >
              {token}
            </span>
          ))}
        </span>
      ) : (
        <span className="turn-text">{turn.text}</span>
      )}
      {turn.reward !== undefined && <span className="turn-reward">reward {turn.reward}</span>}
    </li>
  );
}

function TextEpisode({ sample }: { sample: Extract<TrajectorySample, { kind: 'text' }> }) {
  const scale = maxAbs(sample.turns.flatMap((t) => t.credit ?? []));
  const interventions = sample.interventions ?? [];
  return (
    <div className="text-episode">
      <p className="hint">
        Reward {sample.reward}
        {sample.success === undefined ? '' : sample.success ? ', succeeded' : ', failed'}, credit from{' '}
        {sample.nodeId}
      </p>
      <ol className="transcript" aria-label="transcript">
        {sample.turns.map((turn, i) => (
          <TextTurn
            // biome-ignore lint/suspicious/noArrayIndexKey: turns are positions.
            key={i}
            turn={turn}
            scale={scale}
            index={i}
          />
        ))}
      </ol>
      <InterventionList interventions={interventions} />
    </div>
  );
}

export function TrajectoryViewer({
  view,
  samples,
}: {
  view: RunView;
  samples: ReadonlyMap<number, TrajectorySample[]>;
}) {
  const iterations = view.sampleIterations;
  const newest = iterations[iterations.length - 1];
  /** undefined: follow the newest iteration. */
  const [chosen, setChosen] = useState<number | undefined>(undefined);
  const [episode, setEpisode] = useState(0);
  const iteration = chosen !== undefined && samples.has(chosen) ? chosen : newest;
  const episodes = iteration === undefined ? [] : (samples.get(iteration) ?? []);
  const index = Math.min(episode, Math.max(0, episodes.length - 1));
  const sample = episodes[index];

  useEffect(() => {
    if (chosen !== undefined && !samples.has(chosen)) setChosen(undefined);
  }, [chosen, samples]);

  if (iteration === undefined) {
    return (
      <p className="hint">No trajectory samples yet: credit nodes send a few episodes each iteration.</p>
    );
  }
  return (
    <div className="trajectory-viewer">
      <div className="trajectory-controls">
        <label>
          Iteration
          <select
            value={chosen === undefined ? 'latest' : String(iteration)}
            onChange={(e) => {
              setChosen(e.target.value === 'latest' ? undefined : Number(e.target.value));
              setEpisode(0);
            }}
          >
            <option value="latest">latest ({newest})</option>
            {[...iterations].reverse().map((it) => (
              <option key={it} value={it}>
                {it}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setEpisode(Math.max(0, index - 1))} disabled={index === 0}>
          Previous episode
        </button>
        <output aria-label="episode">
          {episodes.length ? `${index + 1} of ${episodes.length}` : '0 of 0'}
        </output>
        <button
          type="button"
          onClick={() => setEpisode(Math.min(episodes.length - 1, index + 1))}
          disabled={index >= episodes.length - 1}
        >
          Next episode
        </button>
        <span className="hint">iteration {iteration}</span>
      </div>
      {sample?.kind === 'vector' && <VectorEpisode sample={sample} />}
      {sample?.kind === 'text' && <TextEpisode sample={sample} />}
    </div>
  );
}
