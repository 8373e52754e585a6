/**
 * An agent definition's hooks: `module:<path>#<export>` references to functions in JS/TS files,
 * loaded through the tool module loader (same base directory, same reload on change, same
 * bounds), checked when a definition is written and resolved once per instance at activation.
 */
import { stat } from 'node:fs/promises';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { type AgentHookRefs, HOOK_NAMES, type HookName } from '../registry/definition.ts';
import type { HookLayer, RunHooks } from './hooks.ts';
import type { ModuleToolLoader } from './module-tools.ts';

/** A hook reference split into its file path and export name. */
export function parseHookRef(ref: string): { path: string; name: string } {
  const hash = ref.lastIndexOf('#');
  if (!ref.startsWith('module:') || hash <= 'module:'.length || hash === ref.length - 1) {
    throw new AgentPoolError(
      'HOOK_NOT_FOUND',
      `hook reference ${JSON.stringify(ref)} must be "module:<path>#<export>"`,
      {
        ref,
      },
    );
  }
  return { path: ref.slice('module:'.length, hash), name: ref.slice(hash + 1) };
}

/**
 * Checks, when a definition is written, that each hook's module file exists inside the base
 * directory (`VALIDATION_FAILED` naming `hooks.<name>`); the module is not imported here (that runs
 * its code), so a missing export is reported at activation.
 */
export async function checkHookRefs(
  loader: ModuleToolLoader,
  refs: AgentHookRefs | undefined,
): Promise<void> {
  if (refs === undefined) return;
  for (const name of HOOK_NAMES) {
    const ref = refs[name];
    if (ref === undefined) continue;
    const field = `hooks.${name}`;
    try {
      const path = loader.resolvePath(parseHookRef(ref).path);
      if (!(await stat(path)).isFile()) throw new Error('not a file');
    } catch (err) {
      const reason = isAgentPoolError(err)
        ? err.message
        : `the file does not exist under ${loader.options.baseDir}`;
      throw validationError(field, `${JSON.stringify(ref)} cannot be used: ${reason}`, { ref });
    }
  }
}

/**
 * The hook functions an agent's references name, loaded now (each module checked for changes as
 * tool modules are); `HOOK_NOT_FOUND` naming the reference when a file or export is missing or
 * the export is not a function.
 */
export async function resolveHookRefs(loader: ModuleToolLoader, refs: AgentHookRefs): Promise<HookLayer> {
  const hooks: Record<string, unknown> = {};
  await Promise.all(
    HOOK_NAMES.map(async (name) => {
      const ref = refs[name];
      if (ref === undefined) return;
      const { path, name: exported } = parseHookRef(ref);
      let value: unknown;
      try {
        ({ value } = await loader.loadExport(path, exported));
      } catch (err) {
        throw new AgentPoolError(
          'HOOK_NOT_FOUND',
          `hook ${name} ${JSON.stringify(ref)}: ${err instanceof Error ? err.message : String(err)}`,
          { hook: name, ref },
          { cause: err },
        );
      }
      if (typeof value !== 'function') {
        throw new AgentPoolError(
          'HOOK_NOT_FOUND',
          `hook ${name} ${JSON.stringify(ref)}: the module's export ${JSON.stringify(exported)} is ${value === undefined ? 'missing' : `not a function (${typeof value})`}`,
          { hook: name, ref },
        );
      }
      hooks[name] = value;
    }),
  );
  return { origin: (name: HookName) => refs[name] ?? 'agent', hooks: hooks as RunHooks };
}

/** The module paths an agent's hooks load (to retire instances whose hook module changed). */
export function hookModulePaths(loader: ModuleToolLoader, refs: AgentHookRefs | undefined): string[] {
  if (refs === undefined) return [];
  const paths: string[] = [];
  for (const ref of Object.values(refs)) {
    try {
      paths.push(loader.resolvePath(parseHookRef(ref).path));
    } catch {
      // a reference that cannot resolve loads nothing
    }
  }
  return paths;
}
