/**
 * `npm run serve` (and the CLI's `serve`): web mode from the command line. Builds the renderer if needed,
 * starts the server, prints the URL with its session token, and on Ctrl-C stops the runs (each saves a
 * checkpoint) before exiting.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultDataDir } from '../api/data-dir.ts';
import { ensureRendererBuilt } from './renderer-build.ts';
import { DEFAULT_PORT, startWebServer, type WebServer } from './web-server.ts';

export const SERVE_USAGE = `Usage: agent-rl-studio serve [--port N] [--host ADDRESS] [--data-dir DIR] [--allow-host NAME]

  Serves the app and its API at http://127.0.0.1:${DEFAULT_PORT}/ (the next free port if taken) with a
  random session token in the printed URL. --host 0.0.0.0 listens on every interface (for a training box
  reached by name: add --allow-host NAME; an SSH tunnel to 127.0.0.1 is safer). Runs are kept in --data-dir
  (default: the desktop app's data folder).`;

export interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  allowedHosts?: string[];
  /** Lines for the user (default: stdout). */
  print?: (line: string) => void;
  /** Stop on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  /** Say so when the renderer is built first (default true). */
  announceBuild?: boolean;
}

export function parseServeArgs(argv: string[]): ServeOptions | { help: true } | { error: string } {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        'allow-host': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return { error: (error as Error).message };
  }
  if (values.help) return { help: true };
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    return { error: `--port must be a port number 0-65535 (got '${String(values.port)}')` };
  }
  return {
    port,
    host: values.host as string | undefined,
    dataDir: values['data-dir'] as string | undefined,
    allowedHosts: values['allow-host'] as string[] | undefined,
  };
}

/** Build if needed, start, print the URL. */
export async function serve(options: ServeOptions = {}): Promise<WebServer> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const rendererDir = await ensureRendererBuilt({ log: options.announceBuild === false ? undefined : print });
  const dataDir = path.resolve(options.dataDir ?? defaultDataDir());
  const server = await startWebServer({
    port: options.port,
    host: options.host,
    dataDir,
    rendererDir,
    allowedHosts: options.allowedHosts,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  print(`Agent RL Studio (web mode) is serving at ${server.url}`);
  if (options.handleSignals ?? true) {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        process.stderr.write(`${signal} again: exiting without waiting for checkpoints.\n`);
        process.exit(130);
      }
      stopping = true;
      process.stderr.write('Stopping: each active run saves a checkpoint first...\n');
      server.close().then(
        () => process.exit(0),
        (error) => {
          process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  }
  return server;
}

/** The `serve` command: parse arguments and serve; returns an exit code when it does not keep running. */
export async function runServe(
  argv: string[],
  defaults: Partial<ServeOptions> = {},
): Promise<number | undefined> {
  const parsed = parseServeArgs(argv);
  if ('help' in parsed) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  if ('error' in parsed) {
    process.stderr.write(`${parsed.error}\n${SERVE_USAGE}\n`);
    return 2;
  }
  await serve({ ...defaults, ...parsed });
  return undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runServe(process.argv.slice(2)).then(
    (code) => {
      if (code !== undefined) process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`Cannot start web mode: ${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
