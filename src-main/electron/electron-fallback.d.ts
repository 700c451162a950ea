/**
 * The part of Electron's API this app uses, for type-checking where the `electron` package is not
 * installed (it is an optional dependency: npm skips it where it cannot be installed). tsconfig.json maps
 * `electron` to node_modules/electron/electron.d.ts first and to this file only when that is missing, so
 * wherever Electron is installed the code is checked against its real types.
 */

export interface PreventableEvent {
  preventDefault(): void;
}

export interface WebFrameMain {
  readonly url: string;
  readonly parent: WebFrameMain | null;
}

export interface HandlerDetails {
  url: string;
  disposition: 'default' | 'foreground-tab' | 'background-tab' | 'new-window' | 'other';
}

export interface WebContents {
  readonly id: number;
  send(channel: string, ...args: unknown[]): void;
  isDestroyed(): boolean;
  reload(): void;
  setWindowOpenHandler(handler: (details: HandlerDetails) => { action: 'deny' } | { action: 'allow' }): void;
  on(
    event: 'will-navigate' | 'will-redirect' | 'will-attach-webview',
    listener: (event: PreventableEvent) => void,
  ): this;
  on(
    event: 'did-start-navigation',
    listener: (details: { isMainFrame: boolean; isSameDocument: boolean }) => void,
  ): this;
  on(
    event: 'render-process-gone',
    listener: (event: PreventableEvent, details: { reason: string }) => void,
  ): this;
}

export interface IpcMainInvokeEvent {
  readonly sender: WebContents;
  readonly senderFrame: WebFrameMain | null;
}

export interface BrowserWindowConstructorOptions {
  width?: number;
  height?: number;
  minWidth?: number;
  minHeight?: number;
  title?: string;
  show?: boolean;
  webPreferences?: {
    preload?: string;
    contextIsolation?: boolean;
    sandbox?: boolean;
    nodeIntegration?: boolean;
    nodeIntegrationInWorker?: boolean;
    nodeIntegrationInSubFrames?: boolean;
    webSecurity?: boolean;
    allowRunningInsecureContent?: boolean;
    experimentalFeatures?: boolean;
    webviewTag?: boolean;
    navigateOnDragDrop?: boolean;
    disableBlinkFeatures?: string;
    safeDialogs?: boolean;
    spellcheck?: boolean;
    devTools?: boolean;
  };
}

export declare class BrowserWindow {
  constructor(options?: BrowserWindowConstructorOptions);
  static getAllWindows(): BrowserWindow[];
  readonly webContents: WebContents;
  loadURL(url: string): Promise<void>;
  show(): void;
  focus(): void;
  restore(): void;
  isMinimized(): boolean;
  isDestroyed(): boolean;
  once(event: 'ready-to-show', listener: () => void): this;
  on(event: 'closed', listener: () => void): this;
}

interface FileFilter {
  name: string;
  extensions: string[];
}

export declare const app: {
  readonly isPackaged: boolean;
  setName(name: string): void;
  getVersion(): string;
  enableSandbox(): void;
  requestSingleInstanceLock(): boolean;
  whenReady(): Promise<void>;
  quit(): void;
  exit(code?: number): void;
  on(event: 'web-contents-created', listener: (event: PreventableEvent, contents: WebContents) => void): void;
  on(event: 'before-quit', listener: (event: PreventableEvent) => void): void;
  on(event: 'window-all-closed' | 'second-instance' | 'activate', listener: () => void): void;
};

export declare const dialog: {
  showOpenDialog(
    window: BrowserWindow,
    options: { title?: string; filters?: FileFilter[]; properties?: 'openFile'[] },
  ): Promise<{ canceled: boolean; filePaths: string[] }>;
  showOpenDialog(options: {
    title?: string;
    filters?: FileFilter[];
    properties?: 'openFile'[];
  }): Promise<{ canceled: boolean; filePaths: string[] }>;
  showSaveDialog(
    window: BrowserWindow,
    options: { title?: string; defaultPath?: string; filters?: FileFilter[] },
  ): Promise<{ canceled: boolean; filePath: string }>;
  showSaveDialog(options: {
    title?: string;
    defaultPath?: string;
    filters?: FileFilter[];
  }): Promise<{ canceled: boolean; filePath: string }>;
};

export declare const ipcMain: {
  handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: never[]) => unknown): void;
};

export declare const protocol: {
  registerSchemesAsPrivileged(
    schemes: {
      scheme: string;
      privileges: { standard?: boolean; secure?: boolean; supportFetchAPI?: boolean };
    }[],
  ): void;
  handle(scheme: string, handler: (request: Request) => Response | Promise<Response>): void;
};

export declare const session: {
  readonly defaultSession: {
    setPermissionRequestHandler(
      handler: (contents: WebContents, permission: string, callback: (granted: boolean) => void) => void,
    ): void;
    setPermissionCheckHandler(handler: () => boolean): void;
    readonly webRequest: {
      onBeforeRequest(
        listener: (details: { url: string }, callback: (response: { cancel?: boolean }) => void) => void,
      ): void;
    };
  };
};

export declare const shell: {
  openExternal(url: string): Promise<void>;
};

export declare const contextBridge: {
  exposeInMainWorld(apiKey: string, api: unknown): void;
};

export declare const ipcRenderer: {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: never[]) => void): void;
};
