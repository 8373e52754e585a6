/**
 * The tool catalog: turns an agent's tool references into tools when an instance is activated.
 * It owns the ajv instance every JSON Schema tool is compiled against, the builtin and custom
 * tools, and the module loader with its cache, so resolving a reference is a map lookup after the
 * first time and a broken reference fails the activation with a message naming it.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Clock, systemClock } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { describeFailure, refError } from './ref-errors.ts';
import { intOption } from '../core/options.ts';
import { DEFAULT_PROJECT } from '../registry/definition.ts';
import {
  BUILTIN_TOOL_NAMES,
  type BuiltinToolOptions,
  createBuiltinTools,
  type ResolvedBuiltinToolOptions,
  resolveBuiltinToolOptions,
} from './builtins.ts';
import { ComposedTools, fixedTools, type LiveTools, type ToolSource } from './live-tools.ts';
import { MCP_SERVER_NAME } from './mcp/declarations.ts';
import type { McpToolProvider } from './mcp/mcp-servers.ts';
import { type McpOptions, type ResolvedMcpOptions, resolveMcpOptions } from './mcp/mcp-options.ts';
import {
  ModuleToolLoader,
  pickTool,
  type RefusedReload,
  resolveModuleToolLoaderOptions,
} from './module-tools.ts';
import { ToolFigures } from './tool-figures.ts';
import { listTools, type ToolListing } from './tool-listing.ts';
import {
  bindTool,
  createToolAjv,
  isTool,
  runTool,
  type Tool,
  type ToolContext,
  type ToolResult,
} from './tool.ts';

/** Options of a {@link ToolCatalog}. */
export interface ToolCatalogOptions {
  /** Directory `module:` paths are resolved against. @default process.cwd() */
  baseDir?: string;
  /** Whether `module:` paths may resolve outside `baseDir`. @default false */
  allowOutsideBaseDir?: boolean;
  /** Tool modules kept loaded by the catalog's loader. @default 1000 */
  maxModules?: number;
  /** Whether a tool module whose file changed is imported again at its next activation. @default true */
  reload?: boolean;
  /** Distinct contents of one module file imported over the process's life (what Node keeps). @default 20 */
  maxModuleVersions?: number;
  /** Re-imports of changed module files over the process's life. @default 1000 */
  maxReloads?: number;
  /** Options of the builtin tools (fetch allowlist, limits, clock, fetch). @default {} */
  builtins?: BuiltinToolOptions;
  /** Tools registered in code, referenced as `custom:<name>`. @default [] */
  tools?: readonly Tool[];
  /** Timeout of one tool call when the caller gives none. @default 30000 */
  defaultTimeoutMs?: number;
  /** Time source of tool-call timeouts, and of the builtins unless `builtins.clock` is given. @default systemClock */
  clock?: Clock;
  /** MCP servers' sessions, tool lists, timeouts, breakers (`tools/mcp/mcp-options.ts`). @default {} */
  mcp?: McpOptions;
}

/** {@link ToolCatalogOptions} with every default applied. */
export interface ResolvedToolCatalogOptions {
  readonly baseDir: string;
  readonly allowOutsideBaseDir: boolean;
  readonly maxModules: number;
  readonly reload: boolean;
  readonly maxModuleVersions: number;
  readonly maxReloads: number;
  readonly builtins: ResolvedBuiltinToolOptions;
  readonly tools: readonly Tool[];
  readonly defaultTimeoutMs: number;
  readonly clock: Clock;
  readonly mcp: ResolvedMcpOptions;
}

/** A parsed tool reference. */
export type ToolRef =
  | { readonly kind: 'builtin'; readonly name: string }
  | { readonly kind: 'custom'; readonly name: string }
  /** `name` null: every tool of the module. */
  | { readonly kind: 'module'; readonly path: string; readonly name: string | null }
  /** `name` null: every tool of the server. */
  | { readonly kind: 'mcp'; readonly server: string; readonly name: string | null };

/** The reference kinds this catalog resolves. */
export const TOOL_REF_KINDS = ['builtin', 'module', 'custom', 'mcp'] as const;

/** Applies defaults and rejects bad values with a message naming the field. */
export function resolveToolCatalogOptions(
  input: ToolCatalogOptions = {},
  prefix = 'tools.',
): ResolvedToolCatalogOptions {
  const loader = resolveModuleToolLoaderOptions(input, prefix);
  const clock = input.clock ?? systemClock;
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function') {
    throw validationError(`${prefix}clock`, 'must have now() and setTimeout()');
  }
  const tools = input.tools ?? [];
  if (!Array.isArray(tools)) throw validationError(`${prefix}tools`, 'must be an array of tools');
  const names = new Set<string>();
  tools.forEach((tool: unknown, i) => {
    if (!isTool(tool)) throw validationError(`${prefix}tools[${i}]`, 'must be a tool made with defineTool');
    if (names.has(tool.name)) {
      throw validationError(`${prefix}tools[${i}]`, `repeats the tool name ${JSON.stringify(tool.name)}`);
    }
    names.add(tool.name);
  });
  return {
    baseDir: loader.baseDir,
    allowOutsideBaseDir: loader.allowOutsideBaseDir,
    maxModules: loader.maxModules,
    reload: loader.reload,
    maxModuleVersions: loader.maxModuleVersions,
    maxReloads: loader.maxReloads,
    builtins: resolveBuiltinToolOptions({ clock, ...input.builtins }, `${prefix}builtins.`),
    tools: [...tools],
    defaultTimeoutMs: intOption(`${prefix}defaultTimeoutMs`, input.defaultTimeoutMs, 30_000),
    clock,
    mcp: resolveMcpOptions(input.mcp, `${prefix}mcp`),
  };
}

/**
 * Parses `builtin:<name>` (or a bare builtin name), `module:<path>`, `module:<path>#<name>`,
 * `custom:<name>`, `mcp:<server>` and `mcp:<server>/<tool>`; other kinds throw `TOOL_NOT_FOUND`
 * saying the kind is not supported yet.
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
  if (kind === 'mcp') {
    // The first '/' splits server and tool: MCP tool names may hold '/' themselves.
    const slash = rest.indexOf('/');
    const server = slash === -1 ? rest : rest.slice(0, slash);
    const name = slash === -1 ? null : rest.slice(slash + 1);
    if (!MCP_SERVER_NAME.test(server)) {
      throw notFound(
        `needs an MCP server name after "mcp:" (letters, digits and "-", at most 32), got ${JSON.stringify(server)}`,
      );
    }
    if (name === '') throw notFound('needs a tool name after "/"');
    return { kind: 'mcp', server, name };
  }
  throw notFound(`tool kind "${kind}" is not supported yet (supported: ${TOOL_REF_KINDS.join(', ')})`);
}

/**
 * Where a resolved tool comes from: its `source` labels its figures (`builtin`, `custom`,
 * `module`; an MCP server's tools will say `mcp:<server>`), and a module tool names its file.
 */
export interface ToolOrigin {
  readonly source: string;
  /** The reference that resolved it (`builtin:calculator`, `custom:refund`, `module:./x.ts`). */
  readonly ref: string;
  /** A module tool's absolute file path and content version. */
  readonly module?: { readonly path: string; readonly version: string };
}

/** What the catalog is handed by the pool that owns it. */
export interface ToolCatalogDeps {
  /** Told when a changed module file is not imported because a cap was reached. @default ignores */
  onReloadRefused?: (refused: RefusedReload) => void;
}

/** Resolves agents' tool references to tools and runs tool calls with the catalog's default timeout. */
export class ToolCatalog {
  readonly options: ResolvedToolCatalogOptions;
  /** The module loader; its cache is bounded by `maxModules`. */
  readonly modules: ModuleToolLoader;
  /** Calls, errors, timeouts and latency per tool (and per project), fed by the run loop. */
  readonly figures = new ToolFigures();
  /** Where each resolved tool comes from (keyed by the tool object runs hold). */
  readonly #origins = new WeakMap<Tool, ToolOrigin>();
  readonly #ajv = createToolAjv();
  // Keyed by the tool as defined: a module re-imported after leaving the loader's cache yields the
  // same tool objects from Node's module cache, and must not compile its schemas again.
  readonly #bound = new WeakMap<Tool, Tool>();
  readonly #builtins: ReadonlyMap<string, Tool>;
  readonly #custom: ReadonlyMap<string, Tool>;
  #mcp: McpToolProvider | undefined;

  constructor(options: ToolCatalogOptions = {}, deps: ToolCatalogDeps = {}) {
    this.options = resolveToolCatalogOptions(options);
    const prepare = (tool: Tool): Tool => this.#prepare(tool);
    this.modules = new ModuleToolLoader({
      baseDir: this.options.baseDir,
      allowOutsideBaseDir: this.options.allowOutsideBaseDir,
      maxModules: this.options.maxModules,
      reload: this.options.reload,
      maxModuleVersions: this.options.maxModuleVersions,
      maxReloads: this.options.maxReloads,
      prepare,
      ...(deps.onReloadRefused !== undefined && { onReloadRefused: deps.onReloadRefused }),
    });
    const builtins = createBuiltinTools(this.options.builtins);
    this.#builtins = new Map(BUILTIN_TOOL_NAMES.map((name) => [name, prepare(builtins[name])]));
    this.#custom = new Map(this.options.tools.map((tool) => [tool.name, prepare(tool)]));
    for (const [name, tool] of this.#builtins)
      this.#origins.set(tool, { source: 'builtin', ref: `builtin:${name}` });
    for (const [name, tool] of this.#custom)
      this.#origins.set(tool, { source: 'custom', ref: `custom:${name}` });
  }

  /** Where a tool this catalog resolved comes from; undefined for a tool it did not resolve. */
  originOf(tool: Tool): ToolOrigin | undefined {
    return this.#origins.get(tool);
  }

  /**
   * What agents holding `refs` can use: the builtin and registered tools, then the tools of the
   * modules `refs` name (see tool-listing.ts); a new kind of reference adds its case there.
   */
  list(refs: Iterable<string>): ToolListing[] {
    const parsed: ToolRef[] = [];
    for (const ref of refs) {
      try {
        parsed.push(parseToolRef(ref));
      } catch {
        // a definition written before a kind was withdrawn: nothing to list
      }
    }
    return listTools(this, parsed);
  }

  /** The builtin tools, then the registered (`custom:`) ones. */
  ownTools(): { tool: Tool; origin: ToolOrigin }[] {
    return [...this.#builtins.values(), ...this.#custom.values()].map((tool) => ({
      tool,
      origin: this.#origins.get(tool) as ToolOrigin,
    }));
  }

  /** Resolves `mcp:` references through `provider` (the pool's MCP servers); set once by the composition root. */
  useMcp(provider: McpToolProvider): void {
    this.#mcp = provider;
  }

  /**
   * The tools an agent of `project` names, in reference order (a module reference contributes its
   * tools in export order, an MCP server its tools in list order), as they are now. Fails with
   * `TOOL_NOT_FOUND` (or `MCP_SERVER_NOT_FOUND`) naming the reference, or `VALIDATION_FAILED` when
   * two references yield the same tool name.
   */
  async resolve(refs: readonly string[], project: string = DEFAULT_PROJECT): Promise<Tool[]> {
    return [...(await this.resolveLive(refs, project)).current];
  }

  /**
   * {@link resolve}, as an instance holds its tools: `mcp:` references follow their server's cached
   * tool list, so `current` (read at each run's start, never waiting on the server) changes when
   * the list does; without `mcp:` references it never changes.
   */
  async resolveLive(refs: readonly string[], project: string = DEFAULT_PROJECT): Promise<LiveTools> {
    // Settled in parallel (modules import concurrently); the first failure in reference order is
    // reported so the same definition always fails with the same message.
    const settled = await Promise.allSettled(refs.map((ref) => this.#resolveOne(ref, project)));
    const tools: Tool[] = [];
    const parts: (readonly Tool[] | ToolSource)[] = [];
    const seen = new Map<string, string>();
    settled.forEach((outcome, i) => {
      const ref = refs[i] as string;
      if (outcome.status === 'rejected') throw describeFailure(ref, outcome.reason);
      const part = outcome.value;
      parts.push(part);
      for (const tool of Array.isArray(part) ? part : (part as ToolSource).current()) {
        const first = seen.get(tool.name);
        if (first !== undefined) {
          throw validationError(
            'tools',
            `name the tool ${JSON.stringify(tool.name)} twice: in ${JSON.stringify(first)} and ${JSON.stringify(ref)}`,
            { tool: tool.name, refs: [first, ref] },
          );
        }
        seen.set(tool.name, ref);
        tools.push(tool);
      }
    });
    return parts.every((p) => Array.isArray(p)) ? fixedTools(tools) : new ComposedTools(parts);
  }

  /**
   * Forgets what resolving `refs` cached (their tool modules), so the next resolution loads them
   * again: failure recovery's `recover`. Returns how many modules were dropped; bad refs are skipped.
   */
  forgetResolved(refs: readonly string[]): number {
    let dropped = 0;
    for (const ref of refs) {
      let parsed: ToolRef;
      try {
        parsed = parseToolRef(ref);
      } catch {
        continue;
      }
      if (parsed.kind === 'module' && this.modules.forget(parsed.path)) dropped++;
    }
    return dropped;
  }

  /**
   * Checks, when a definition is written, that a tool reference names a tool that exists, without
   * loading anything; `VALIDATION_FAILED` naming `field` (`tools[2]`) and listing what is known
   * otherwise. Builtin and registered (`custom:`) tools must exist; a module's file must exist
   * inside the base directory. A module is not imported here (that runs its code, at activation),
   * so `module:<path>#<name>` naming a tool the module lacks is still reported at activation.
   */
  async check(ref: string, field = 'tools'): Promise<void> {
    let parsed: ToolRef;
    try {
      parsed = parseToolRef(ref);
    } catch (err) {
      throw refError(field, ref, err);
    }
    switch (parsed.kind) {
      case 'builtin':
        if (!this.#builtins.has(parsed.name)) {
          throw validationError(
            field,
            `names no builtin tool ${JSON.stringify(parsed.name)} (${this.#known()})`,
            {
              ref,
              builtins: [...this.#builtins.keys()],
            },
          );
        }
        return;
      case 'custom':
        if (!this.#custom.has(parsed.name)) {
          throw validationError(
            field,
            `names no registered tool ${JSON.stringify(parsed.name)} (${this.#known()})`,
            { ref, registered: [...this.#custom.keys()] },
          );
        }
        return;
      case 'module': {
        let path: string;
        try {
          path = this.modules.resolvePath(parsed.path);
          if (!(await stat(path)).isFile()) throw new Error('not a file');
        } catch (err) {
          if (isAgentPoolError(err)) throw refError(field, ref, err);
          throw validationError(
            field,
            `names the tool module ${JSON.stringify(parsed.path)}, but ${resolve(this.options.baseDir, parsed.path)} is not a file (module paths are resolved against ${this.options.baseDir})`,
            { ref, baseDir: this.options.baseDir },
          );
        }
        return;
      }
      case 'mcp':
        // Declarations are per project and may come after the agent (apply -f, a server declared
        // later): a reference to an undeclared server fails its activation, MCP_SERVER_NOT_FOUND.
        return;
      default: {
        // A new kind of reference adds its case above; until it does, this fails to compile.
        const unchecked: never = parsed;
        throw validationError(
          field,
          `has a tool kind this catalog cannot check: ${JSON.stringify(unchecked)}`,
        );
      }
    }
  }

  /** What a reference may name, for messages. */
  #known(): string {
    const custom = [...this.#custom.keys()];
    return (
      `builtin tools: ${[...this.#builtins.keys()].join(', ')}; ` +
      `registered tools (custom:<name>): ${custom.length === 0 ? 'none' : custom.join(', ')}; ` +
      `or module:<path> for a tool module, mcp:<server> for a declared MCP server's tools`
    );
  }

  /** Runs one call of a resolved tool (see {@link runTool}); never throws. */
  run(
    tool: Tool,
    input: unknown,
    ctx: ToolContext,
    timeoutMs: number = this.options.defaultTimeoutMs,
  ): Promise<ToolResult> {
    return runTool(tool, input, ctx, timeoutMs, this.options.clock);
  }

  async #resolveOne(ref: string, project: string): Promise<readonly Tool[] | ToolSource> {
    const parsed = parseToolRef(ref);
    switch (parsed.kind) {
      case 'builtin': {
        const tool = this.#builtins.get(parsed.name);
        if (tool === undefined) {
          throw new AgentPoolError(
            'TOOL_NOT_FOUND',
            `no builtin tool named ${JSON.stringify(parsed.name)} (builtins: ${BUILTIN_TOOL_NAMES.join(', ')}; ` +
              'use module:<path> or custom:<name> for other tools)',
            { tool: parsed.name },
          );
        }
        return [tool];
      }
      case 'custom': {
        const tool = this.#custom.get(parsed.name);
        if (tool === undefined) {
          const known = [...this.#custom.keys()];
          throw new AgentPoolError(
            'TOOL_NOT_FOUND',
            `no custom tool named ${JSON.stringify(parsed.name)} is registered (registered: ${known.length === 0 ? 'none' : known.join(', ')})`,
            { tool: parsed.name },
          );
        }
        return [tool];
      }
      case 'module': {
        const module = await this.modules.load(parsed.path);
        const tools = parsed.name === null ? module.tools : [pickTool(module, parsed.name)];
        for (const tool of tools) {
          if (this.#origins.has(tool)) continue;
          this.#origins.set(tool, {
            source: 'module',
            ref: `module:${parsed.path}`,
            module: { path: module.path, version: module.version },
          });
        }
        return tools;
      }
      case 'mcp': {
        if (this.#mcp === undefined) {
          throw new AgentPoolError('TOOL_NOT_FOUND', 'MCP servers are resolved by an agent pool only');
        }
        const origin: ToolOrigin = { source: `mcp:${parsed.server}`, ref };
        return this.#mcp.resolve(project, parsed.server, parsed.name, (tool) => {
          const prepared = this.#prepare(tool);
          this.#origins.set(prepared, origin);
          return prepared;
        });
      }
    }
  }

  #prepare(tool: Tool): Tool {
    let bound = this.#bound.get(tool);
    if (bound === undefined) {
      bound = bindTool(tool, this.#ajv);
      this.#bound.set(tool, bound);
    }
    return bound;
  }
}
