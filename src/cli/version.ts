/**
 * The version of the installed agentpool, read from its own package.json, which sits two levels
 * up from this file both in the sources (`src/cli/`) and in the build (`dist/cli/`).
 */
import { readFileSync } from 'node:fs';

/** The `version` of agentpool's package.json. */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  if (typeof manifest.version !== 'string') throw new Error('agentpool package.json has no version');
  return manifest.version;
}
