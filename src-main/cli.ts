/**
 * Command line: `train <graph.json>` with a live progress line, metrics JSONL and checkpoints; Ctrl-C
 * stops cleanly with a checkpoint. Uses the same runtime as the app and exported code.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createRegistry } from '../nodes/index.ts';
import { compileGraph } from './engine/compiler.ts';
import { formatDiagnostic } from './engine/diagnostics.ts';
import type { MetricsRecord } from './engine/events.ts';
import { exportGraph } from './engine/export/index.ts';
import { parseGraphText } from './engine/graph/parse.ts';
import { BACKEND_NAMES, type BackendName } from './engine/graph/types.ts';
import { RunControl } from './engine/runtime/control.ts';
import { executeRun } from './engine/runtime/run.ts';

const USAGE = `Usage:
  agent-rl-studio train <graph.json> [--iterations N] [--seed N] [--backend auto|tensorflow|wasm|cpu]
                                     [--out DIR] [--resume RUN_DIR] [--quiet]

  train   Train a graph. Writes graph.json, metrics.jsonl (one JSON line per iteration) and checkpoints
          into --out (default .runs/<name>-<time>). --resume continues a run folder from its latest
          checkpoint. Ctrl-C stops and saves a checkpoint.

  agent-rl-studio export <graph.json> [-o file.ts]
  export  Write the graph as a runnable TypeScript module (npx tsx file.ts trains it as the app does);
          to stdout without -o. Graph errors print as nodeId.field: message, exit code 1.

  agent-rl-studio serve [--port N] [--host ADDRESS] [--data-dir DIR]
  serve   Web mode: the app and its API on http://127.0.0.1 with a session token (see serve --help).`;

const BACKENDS: readonly BackendName[] = BACKEND_NAMES;

function die(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function wholeNumber(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) die(`--${flag} must be a whole number >= ${min} (got '${value}')`);
  return n;
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'run'
  );
}

/** One line, redrawn in place on a terminal, printed every few seconds otherwise. */
class Progress {
  private lastPrint = 0;
  constructor(
    private readonly total: number,
    private readonly tty: boolean,
  ) {}

  update(record: MetricsRecord, force = false): void {
    const now = performance.now();
    if (!this.tty && !force && now - this.lastPrint < 5000) return;
    this.lastPrint = now;
    const done = record.iteration + 1;
    const width = 24;
    const filled = Math.round((done / this.total) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const rate = record.seconds > 0 ? record.envSteps / record.seconds : 0;
    const ret = Object.entries(record.metrics).find(([k]) => k.endsWith('/episode_return_mean'))?.[1];
    const text = `[${bar}] iteration ${done}/${this.total}  ${record.envSteps.toLocaleString('en-US')} steps  ${Math.round(rate).toLocaleString('en-US')} steps/s${ret === undefined ? '' : `  return ${ret.toFixed(1)}`}`;
    process.stderr.write(this.tty ? `\r${text}\u001b[K` : `${text}\n`);
  }

  end(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

async function train(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      iterations: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  const file = positionals[0];
  if (!file && !values.resume) die(USAGE);
  const backend = values.backend as BackendName | undefined;
  if (backend && !BACKENDS.includes(backend))
    die(`--backend must be one of ${BACKENDS.join(', ')} (got '${backend}')`);
  const iterations = wholeNumber(values.iterations, 'iterations', 1);
  const seed = wholeNumber(values.seed, 'seed', 0);
  const registry = createRegistry();

  let graph: unknown;
  let name = 'run';
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      die(`Cannot read ${file}: ${(error as Error).message}`, 1);
    }
    const parsed = parseGraphText(text);
    const compiled = parsed.graph ? compileGraph(parsed.graph, registry) : parsed;
    for (const d of compiled.diagnostics) {
      process.stderr.write(`${d.severity === 'error' ? 'error' : 'warning'} ${formatDiagnostic(d)}\n`);
    }
    if (!parsed.graph || compiled.diagnostics.some((d) => d.severity === 'error')) return 1;
    graph = parsed.graph;
    name = parsed.graph.name;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const runDir = values.out ?? values.resume ?? path.join('.runs', `${slug(name)}-${stamp}`);

  const control = new RunControl();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (interrupts > 1) die('\nInterrupted twice: exiting without a checkpoint.', 130);
    process.stderr.write('\nStopping after saving a checkpoint (Ctrl-C again to quit at once)...\n');
    control.stop();
  });

  let progress: Progress | undefined;
  const result = await executeRun({
    graph,
    registry,
    iterations,
    seed,
    backend,
    runDir,
    resumeFrom: values.resume,
    control,
    // Nobody can press Resume in a terminal: a safety finding's pause request stops with a checkpoint.
    onPauseRequest: 'stop',
    onEvent: (event) => {
      if (event.type === 'status' && event.status === 'running' && !progress) {
        const total =
          iterations ?? (graph as { run: { iterations: number } } | undefined)?.run.iterations ?? 0;
        progress = values.quiet ? undefined : new Progress(total, process.stderr.isTTY === true);
      } else if (event.type === 'metrics') {
        progress?.update(event.record);
      } else if (event.type === 'log' && event.level !== 'info') {
        process.stderr.write(
          `\n${event.level}: ${event.nodeId ? `${event.nodeId}: ` : ''}${event.message}\n`,
        );
      } else if (event.type === 'log' && !values.quiet) {
        process.stderr.write(`${event.message}\n`);
      } else if (event.type === 'error') {
        process.stderr.write(
          `\nerror ${event.nodeId && !event.message.startsWith(event.nodeId) ? `${event.nodeId}${event.field ? `.${event.field}` : ''}: ` : ''}${event.message}\n`,
        );
      }
    },
  });
  const last = result.metrics.at(-1);
  if (last) progress?.update(last, true);
  progress?.end();
  process.stderr.write(
    `Run ${result.status} at iteration ${result.iteration} (${result.envSteps.toLocaleString('en-US')} env steps, backend ${result.backend ?? 'none'}). Files: ${runDir}\n`,
  );
  return result.status === 'finished' || result.status === 'stopped' ? 0 : 1;
}

async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string', short: 'o' } },
  });
  const file = positionals[0];
  if (!file || positionals.length > 1) die(USAGE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    die(`Cannot read ${file}: ${(error as Error).message}`, 1);
  }
  const registry = createRegistry();
  const parsed = parseGraphText(text);
  const compiled = parsed.graph ? compileGraph(parsed.graph, registry) : parsed;
  for (const d of compiled.diagnostics) {
    process.stderr.write(`${d.severity === 'error' ? 'error' : 'warning'} ${formatDiagnostic(d)}\n`);
  }
  if (!parsed.graph || compiled.diagnostics.some((d) => d.severity === 'error')) return 1;
  const exported = exportGraph(parsed.graph, registry);
  if (!values.out) {
    process.stdout.write(exported.code);
    return 0;
  }
  try {
    await writeFile(values.out, exported.code);
  } catch (error) {
    die(`Cannot write ${values.out}: ${(error as Error).message}`, 1);
  }
  process.stderr.write(`Wrote ${values.out}. Run it with: npx tsx ${values.out}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'train':
      return train(rest);
    case 'export':
      return exportCommand(rest);
    case 'serve': {
      const { runServe } = await import('./server/serve.ts');
      // undefined: the server keeps running until Ctrl-C
      return (await runServe(rest)) ?? 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 2;
    default:
      die(`Unknown command '${command}'.\n${USAGE}`);
  }
}

const code = await main(process.argv.slice(2));
if (code !== 0 || process.argv[2] !== 'serve') process.exitCode = code;
