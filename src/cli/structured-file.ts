/**
 * Reading the CLI's YAML and JSON files (config files, agents files): a file that cannot be read
 * or parsed fails with `VALIDATION_FAILED` saying which file, who named it, and where the mistake is.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AgentPoolError } from '../core/errors.ts';
import { describeSyntaxError, syntaxErrorPosition } from './syntax-error.ts';

/**
 * Reads a YAML or JSON file (`.json` parses as JSON, anything else as YAML, which JSON also is);
 * `what` names it in messages ("config file", "agents file").
 */
export function readStructuredFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new AgentPoolError('VALIDATION_FAILED', `${what} ${path} ${reason}`, { path }, { cause: err });
  }
  const format = extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  try {
    return format === 'JSON' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    // The line and column, and the offending line itself, so the mistake is found without an editor.
    const { line, column } = syntaxErrorPosition(err);
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      `${what} ${path} ${describeSyntaxError(text, err, format)}`,
      { path, ...(line !== undefined && { line, column }) },
      { cause: err },
    );
  }
}
