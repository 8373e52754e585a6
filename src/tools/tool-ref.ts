/**
 * Tool references as agents write them: `builtin:<name>` (or a bare builtin name),
 * `custom:<name>`, `module:<path>` and `module:<path>#<name>`.
 */
import { AgentPoolError } from '../core/errors.ts';

/** A parsed tool reference. */
export type ToolRef =
  | { readonly kind: 'builtin'; readonly name: string }
  | { readonly kind: 'custom'; readonly name: string }
  /** `name` null: every tool of the module. */
  | { readonly kind: 'module'; readonly path: string; readonly name: string | null };

/** The reference kinds this catalog resolves. */
export const TOOL_REF_KINDS = ['builtin', 'module', 'custom'] as const;

/**
 * Parses `builtin:<name>` (or a bare builtin name), `module:<path>`, `module:<path>#<name>` and
 * `custom:<name>`; other kinds throw `TOOL_NOT_FOUND` saying the kind is not supported yet.
 */
export function parseToolRef(ref: string): ToolRef {
  const notFound = (message: string): AgentPoolError =>
    new AgentPoolError('TOOL_NOT_FOUND', `tool reference ${JSON.stringify(ref)}: ${message}`, { ref });
  if (typeof ref !== 'string' || ref.trim() === '') throw notFound('must be a non-empty string');
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s.exec(ref);
  if (match === null) return { kind: 'builtin', name: ref };
  const kind = (match[1] as string).toLowerCase();
  const rest = match[2] as string;
  if (kind === 'builtin' || kind === 'custom') {
    if (rest === '') throw notFound(`needs a tool name after "${kind}:"`);
    return { kind, name: rest };
  }
  if (kind === 'module') {
    // The last '#' splits path and tool name, so a '#' inside a directory name still works.
    const hash = rest.lastIndexOf('#');
    const path = hash === -1 ? rest : rest.slice(0, hash);
    const name = hash === -1 ? null : rest.slice(hash + 1);
    if (path === '') throw notFound('needs a file path after "module:"');
    if (name === '') throw notFound('needs a tool name after "#"');
    return { kind: 'module', path, name };
  }
  throw notFound(`tool kind "${kind}" is not supported yet (supported: ${TOOL_REF_KINDS.join(', ')})`);
}
