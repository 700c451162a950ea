import os from 'node:os';
import path from 'node:path';

export const APP_NAME = 'Agent RL Studio';

/**
 * The app's data folder (runs, checkpoints), shared by the desktop app and web mode: Electron's userData
 * location for this app name. AGENT_RL_STUDIO_DATA_DIR overrides it.
 */
export function defaultDataDir(): string {
  const override = process.env.AGENT_RL_STUDIO_DATA_DIR;
  if (override) return path.resolve(override);
  const home = os.homedir();
  switch (process.platform) {
    case 'win32':
      return path.join(process.env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), APP_NAME);
    case 'darwin':
      return path.join(home, 'Library', 'Application Support', APP_NAME);
    default:
      return path.join(process.env.XDG_CONFIG_HOME ?? path.join(home, '.config'), APP_NAME);
  }
}
