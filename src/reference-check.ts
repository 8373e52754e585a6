/**
 * The reference check of agent definitions: what a definition names must exist in the model and
 * tool catalogs of whoever writes it. It sits above the registry (which only knows the hook) and the
 * catalogs (which know what exists), and needs no pool, so `agentpool apply -f` checks an agents
 * file the way the server would without loading the rest of it.
 */
import type { ModelCatalog } from './models/catalog.ts';
import type { ReferenceCheck } from './registry/registry.ts';
import type { ToolCatalog } from './tools/catalog.ts';
import { checkHookRefs } from './tools/hook-modules.ts';

/**
 * The check a registry runs on every definition it writes: the model and each fallback must name a
 * provider `models` knows, and each tool reference a tool `tools` can resolve (see
 * `ModelCatalog.check` and `ToolCatalog.check`), each hook's module file must exist; the first
 * failure, in field order, is reported.
 */
export function referenceCheck(models: ModelCatalog, tools: ToolCatalog): ReferenceCheck {
  return async (spec) => {
    models.check(spec.model, 'model');
    spec.fallbacks?.forEach((ref, i) => models.check(ref, `fallbacks[${i}]`));
    for (const [i, ref] of spec.tools.entries()) await tools.check(ref, `tools[${i}]`);
    await checkHookRefs(tools.modules, spec.hooks);
  };
}
