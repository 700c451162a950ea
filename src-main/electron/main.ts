/**
 * The desktop app's main process: one window on the app's own app:// origin, the StudioApi over IPC, and
 * the Electron security checklist (contextIsolation, sandbox, no nodeIntegration, strict CSP, no remote
 * content, navigation and new windows blocked, permissions denied, external links only for http(s) links).
 * Training runs in the engine's worker threads (WorkerRun), never on this thread.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  type IpcMainInvokeEvent,
  ipcMain,
  protocol,
  session,
  shell,
  type WebContents,
} from 'electron';
import { CONTENT_SECURITY_POLICY } from '../api/content-security-policy.ts';
import { APP_NAME, defaultDataDir } from '../api/data-dir.ts';
import { type CallReply, dispatchCall, subscribeParams, unsubscribeParams } from '../api/dispatch.ts';
import { toErrorInfo } from '../api/errors.ts';
import { StudioService } from '../api/studio-service.ts';

const APP_SCHEME = 'app';
const APP_HOST = 'studio';
const APP_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

// Bundled layout: out/main/index.js, out/preload/index.cjs, out/renderer/.
const here = path.dirname(fileURLToPath(import.meta.url));
const rendererDir = path.join(here, '..', 'renderer');
const preloadPath = path.join(here, '..', 'preload', 'index.cjs');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
};

// Must happen before `ready`: app:// behaves as a secure, standard origin (so CSP 'self' and ES modules work).
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);
app.setName(APP_NAME);
// Every renderer sandboxed, whatever a window's options say.
app.enableSandbox();

const log = (level: string, message: string) => {
  const line = `${level}: ${message}`;
  if (level === 'error') console.error(line);
  else console.warn(line);
};

let mainWindow: BrowserWindow | undefined;

const service = new StudioService({
  dataDir: defaultDataDir(),
  mode: 'desktop',
  version: app.getVersion(),
  log,
  dialogs: {
    async showOpen() {
      const options = {
        title: 'Open a graph',
        filters: [{ name: 'Graph files', extensions: ['json'] }],
        properties: ['openFile' as const],
      };
      const result = mainWindow
        ? await dialog.showOpenDialog(mainWindow, options)
        : await dialog.showOpenDialog(options);
      return result.canceled ? null : (result.filePaths[0] ?? null);
    },
    async showSave(defaultFileName) {
      const options = {
        title: 'Save the graph',
        defaultPath: defaultFileName,
        filters: [{ name: 'Graph files', extensions: ['json'] }],
      };
      const result = mainWindow
        ? await dialog.showSaveDialog(mainWindow, options)
        : await dialog.showSaveDialog(options);
      return result.canceled || !result.filePath ? null : result.filePath;
    },
  },
});

/** Is this URL a page or asset of the app itself? */
function isAppUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return url.protocol === `${APP_SCHEME}:` && url.host === APP_HOST;
  } catch {
    return false;
  }
}

/** Only the main frame of the app's own window, showing the app's own page, may call the API. */
function trustedSender(event: IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  if (!frame || !mainWindow || mainWindow.isDestroyed()) return false;
  return event.sender.id === mainWindow.webContents.id && frame.parent === null && isAppUrl(frame.url);
}

const refused = (): CallReply => ({
  ok: false,
  error: { code: 'bad-message', message: 'Refused: this frame may not use the studio API.' },
});

// --- IPC: the StudioApi adapter ---

/** Per window: the renderer's subscription id -> the service's. */
const subscriptionsByContents = new Map<number, Map<string, string>>();

function dropSubscriptions(contents: WebContents): void {
  const subscriptions = subscriptionsByContents.get(contents.id);
  if (!subscriptions) return;
  subscriptionsByContents.delete(contents.id);
  // A closed or crashed window never stops a run: only its subscriptions end.
  for (const serviceId of subscriptions.values()) void service.unsubscribe(serviceId);
}

function registerIpc(): void {
  ipcMain.handle('studio:call', async (event, method: unknown, params: unknown): Promise<CallReply> => {
    if (!trustedSender(event)) return refused();
    return dispatchCall(service, method, params, (message) => log('error', message));
  });

  ipcMain.handle('studio:subscribe', async (event, ...params: unknown[]): Promise<CallReply> => {
    if (!trustedSender(event)) return refused();
    const parsed = subscribeParams.safeParse(params);
    if (!parsed.success)
      return {
        ok: false,
        error: { code: 'bad-arguments', message: 'subscribe takes (runId, subscriptionId, fromSeq?).' },
      };
    const [runId, clientId, fromSeq] = parsed.data;
    const contents = event.sender;
    let subscriptions = subscriptionsByContents.get(contents.id);
    if (!subscriptions) {
      subscriptions = new Map();
      subscriptionsByContents.set(contents.id, subscriptions);
    }
    const previous = subscriptions.get(clientId);
    if (previous) await service.unsubscribe(previous);
    try {
      const serviceId = await service.subscribe(
        runId,
        (runEvent, seq) => {
          if (!contents.isDestroyed()) contents.send('studio:event', clientId, seq, runEvent);
        },
        { fromSeq },
      );
      subscriptions.set(clientId, serviceId);
      return { ok: true, result: clientId };
    } catch (error) {
      return { ok: false, error: toErrorInfo(error) };
    }
  });

  ipcMain.handle('studio:unsubscribe', async (event, ...params: unknown[]): Promise<CallReply> => {
    if (!trustedSender(event)) return refused();
    const parsed = unsubscribeParams.safeParse(params);
    if (!parsed.success)
      return { ok: false, error: { code: 'bad-arguments', message: 'unsubscribe takes (subscriptionId).' } };
    const subscriptions = subscriptionsByContents.get(event.sender.id);
    const serviceId = subscriptions?.get(parsed.data[0]);
    subscriptions?.delete(parsed.data[0]);
    if (serviceId) await service.unsubscribe(serviceId);
    return { ok: true, result: null };
  });
}

// --- the app:// protocol: the built renderer, with the CSP as a header ---

function registerAppProtocol(): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const url = new URL(request.url);
    if (url.host !== APP_HOST) return new Response('Not found', { status: 404 });
    let relative: string;
    try {
      relative = decodeURIComponent(url.pathname);
    } catch {
      return new Response('Bad path', { status: 400 });
    }
    if (relative === '/' || relative === '') relative = '/index.html';
    const file = path.resolve(rendererDir, `.${relative}`);
    if (!file.startsWith(rendererDir + path.sep)) return new Response('Not found', { status: 404 });
    try {
      const body = await readFile(file);
      return new Response(body, {
        headers: {
          'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
          'Content-Security-Policy': CONTENT_SECURITY_POLICY,
          'X-Content-Type-Options': 'nosniff',
        },
      });
    } catch {
      return new Response('Not found', { status: 404 });
    }
  });
}

// --- session hardening ---

function hardenSession(): void {
  const defaultSession = session.defaultSession;
  // No camera, microphone, notifications, geolocation...: the app needs none.
  defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  defaultSession.setPermissionCheckHandler(() => false);
  // No remote content: the window loads only app:// (and data:/blob: it makes itself).
  defaultSession.webRequest.onBeforeRequest((details, callback) => {
    const allowed = isAppUrl(details.url) || /^(data|blob|devtools|chrome-extension):/.test(details.url);
    if (!allowed) log('warn', `Blocked a request to ${details.url.slice(0, 200)}`);
    callback({ cancel: !allowed });
  });
}

/** An http(s) link the user clicked opens in their browser; anything else is dropped. */
let lastExternalOpen = 0;
function openExternalLink(rawUrl: string, disposition: string): void {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return;
  }
  // Link activations come as tabs or windows; 'other' is a script-driven open, not a click.
  const clicked =
    disposition === 'foreground-tab' || disposition === 'background-tab' || disposition === 'new-window';
  const now = Date.now();
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !clicked || now - lastExternalOpen < 1000) {
    log('warn', `Refused to open ${rawUrl.slice(0, 200)} outside the app.`);
    return;
  }
  lastExternalOpen = now;
  shell
    .openExternal(url.href)
    .catch((error: Error) => log('error', `Cannot open ${url.href}: ${error.message}`));
}

app.on('web-contents-created', (_event, contents) => {
  // The app is a single page: no navigation anywhere, in any frame.
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url, disposition }) => {
    openExternalLink(url, disposition);
    return { action: 'deny' };
  });
});

function createWindow(): void {
  const window = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 800,
    minHeight: 500,
    title: APP_NAME,
    show: false,
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      // Middle-click (auxclick) would otherwise open links in new windows.
      disableBlinkFeatures: 'Auxclick',
      safeDialogs: true,
      spellcheck: false,
      devTools: !app.isPackaged,
    },
  });
  mainWindow = window;
  const contents = window.webContents;
  const contentsId = contents.id;
  window.once('ready-to-show', () => window.show());
  window.on('closed', () => {
    const subscriptions = subscriptionsByContents.get(contentsId);
    subscriptionsByContents.delete(contentsId);
    for (const serviceId of subscriptions?.values() ?? []) void service.unsubscribe(serviceId);
    if (mainWindow === window) mainWindow = undefined;
  });
  // A reload starts a new page that subscribes afresh; a crashed page is reloaded (its runs go on).
  contents.on('did-start-navigation', (details) => {
    if (details.isMainFrame && !details.isSameDocument) dropSubscriptions(contents);
  });
  let lastCrash = 0;
  contents.on('render-process-gone', (_event, details) => {
    dropSubscriptions(contents);
    log('error', `The window's renderer stopped (${details.reason}); training runs continue.`);
    if (details.reason !== 'clean-exit' && Date.now() - lastCrash > 10_000) {
      lastCrash = Date.now();
      contents.reload();
    }
  });
  window.loadURL(APP_URL).catch((error: Error) => log('error', `Cannot load the app page: ${error.message}`));
}

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting) return;
  // Stop the runs first: each writes a checkpoint that "resume" continues from.
  event.preventDefault();
  quitting = true;
  service
    .shutdown(8000)
    .catch((error: Error) => log('error', `Stopping runs: ${error.message}`))
    .finally(() => app.quit());
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

if (!app.requestSingleInstanceLock()) {
  // Another instance owns the data folder and its runs: let it show itself.
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
  app
    .whenReady()
    .then(() => {
      hardenSession();
      registerAppProtocol();
      registerIpc();
      createWindow();
    })
    .catch((error: Error) => {
      log('error', `The app could not start: ${error.stack ?? error.message}`);
      app.exit(1);
    });
}
