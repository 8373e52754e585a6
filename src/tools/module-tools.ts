/**
 * Module tools: a JS/TS file that exports tools made with `defineTool`, either as a default-export
 * array or as named exports. The loader imports each file once and keeps its tools in a bounded
 * cache on the loader instance, so activating agents never re-imports or re-discovers a module.
 */
import { stat } from 'node:fs/promises';
import { extname, isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentPoolError, validationError } from '../core/errors.ts';
import { boolOption, intOption } from '../core/options.ts';
import { isTool, type Tool } from './tool.ts';

/** Options of a {@link ModuleToolLoader}. */
export interface ModuleToolLoaderOptions {
  /** Directory relative module paths are resolved against. @default process.cwd() */
  baseDir?: string;
  /**
   * Whether a path may resolve outside `baseDir`. Off by default because agent definitions may come
   * from API users, who must not be able to import arbitrary files of the server. @default false
   */
  allowOutsideBaseDir?: boolean;
  /** Modules whose tools are kept; the least recently used is dropped beyond it. @default 1000 */
  maxModules?: number;
  /** Applied once to every tool when its module loads (a catalog binds tools to its validator). @default identity */
  prepare?: (tool: Tool) => Tool;
}

/** {@link ModuleToolLoaderOptions} with every default applied. */
export type ResolvedModuleToolLoaderOptions = Required<ModuleToolLoaderOptions>;

/** The tools one module exports: the default array's in its order, then named ones by export name. */
export interface ModuleTools {
  /** The absolute path the module was imported from. */
  readonly path: string;
  readonly tools: readonly Tool[];
  /** The named exports that are tools, by export name. */
  readonly exports: ReadonlyMap<string, Tool>;
}

/** File extensions Node can import as a tool module. */
export const MODULE_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'] as const;

/** Applies defaults and rejects bad values with a message naming the field. */
export function resolveModuleToolLoaderOptions(
  input: ModuleToolLoaderOptions = {},
  prefix = 'tools.',
): ResolvedModuleToolLoaderOptions {
  if (input.baseDir !== undefined && (typeof input.baseDir !== 'string' || input.baseDir === '')) {
    throw validationError(`${prefix}baseDir`, 'must be a non-empty directory path');
  }
  if (input.prepare !== undefined && typeof input.prepare !== 'function') {
    throw validationError(`${prefix}prepare`, 'must be a function');
  }
  return {
    baseDir: resolve(input.baseDir ?? process.cwd()),
    allowOutsideBaseDir: boolOption(`${prefix}allowOutsideBaseDir`, input.allowOutsideBaseDir, false),
    maxModules: intOption(`${prefix}maxModules`, input.maxModules, 1000),
    prepare: input.prepare ?? ((tool) => tool),
  };
}

/** Loads tool modules by dynamic import and caches their tools per resolved path. */
export class ModuleToolLoader {
  readonly options: ResolvedModuleToolLoaderOptions;
  // Promises, not results: concurrent activations of agents sharing a module import it once.
  // Map order is recency order (a hit re-inserts), which makes dropping the oldest an LRU.
  readonly #cache = new Map<string, Promise<ModuleTools>>();

  constructor(options: ModuleToolLoaderOptions = {}) {
    this.options = resolveModuleToolLoaderOptions(options);
  }

  /** Modules currently cached. */
  get size(): number {
    return this.#cache.size;
  }

  /** The absolute path a module reference points at; throws `TOOL_NOT_FOUND` when it is not allowed. */
  resolvePath(path: string): string {
    if (typeof path !== 'string' || path.trim() === '') {
      throw new AgentPoolError('TOOL_NOT_FOUND', 'a module tool reference needs a file path', { path });
    }
    const absolute = resolve(this.options.baseDir, path);
    const inside = relative(this.options.baseDir, absolute);
    if (!this.options.allowOutsideBaseDir && (inside.startsWith('..') || isAbsolute(inside))) {
      throw new AgentPoolError(
        'TOOL_NOT_FOUND',
        `tool module ${JSON.stringify(path)} resolves to ${absolute}, outside the tool base directory ${this.options.baseDir}`,
        { path: absolute, baseDir: this.options.baseDir },
      );
    }
    if (!(MODULE_EXTENSIONS as readonly string[]).includes(extname(absolute))) {
      throw new AgentPoolError(
        'TOOL_NOT_FOUND',
        `tool module ${absolute} must be a ${MODULE_EXTENSIONS.join(', ')} file`,
        { path: absolute },
      );
    }
    return absolute;
  }

  /** Every tool of a module, importing it on first use. */
  load(path: string): Promise<ModuleTools> {
    const absolute = this.resolvePath(path);
    const cached = this.#cache.get(absolute);
    if (cached !== undefined) {
      this.#cache.delete(absolute);
      this.#cache.set(absolute, cached);
      return cached;
    }
    const loading = this.#import(absolute);
    this.#cache.set(absolute, loading);
    // A failed load is forgotten so a fixed file can be tried again (Node may still hold a module
    // whose evaluation threw; that is Node's cache, not ours).
    loading.catch(() => {
      if (this.#cache.get(absolute) === loading) this.#cache.delete(absolute);
    });
    while (this.#cache.size > this.options.maxModules) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
    return loading;
  }

  /** One tool of a module, by tool name or, failing that, by export name. */
  async loadTool(path: string, name: string): Promise<Tool> {
    const module = await this.load(path);
    const tool = module.tools.find((t) => t.name === name) ?? module.exports.get(name);
    if (tool === undefined) {
      const available = module.tools.map((t) => t.name);
      throw new AgentPoolError(
        'TOOL_NOT_FOUND',
        `tool module ${module.path} has no tool named ${JSON.stringify(name)} (it exports: ${available.join(', ')})`,
        { path: module.path, tool: name, available },
      );
    }
    return tool;
  }

  /**
   * Drops one cached module (failure recovery's `recover`): the next load reads and checks it
   * again (Node's own module cache still applies). False when it was not cached or the path is refused.
   */
  forget(path: string): boolean {
    let absolute: string;
    try {
      absolute = this.resolvePath(path);
    } catch {
      return false;
    }
    return this.#cache.delete(absolute);
  }

  /** Drops every cached module; the next load imports again (Node's own module cache still applies). */
  clear(): void {
    this.#cache.clear();
  }

  async #import(path: string): Promise<ModuleTools> {
    try {
      if (!(await stat(path)).isFile()) throw new Error('not a file');
    } catch {
      throw new AgentPoolError('TOOL_NOT_FOUND', `tool module ${path} does not exist`, { path });
    }
    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    } catch (err) {
      throw new AgentPoolError(
        'TOOL_NOT_FOUND',
        `tool module ${path} failed to load: ${err instanceof Error ? err.message : String(err)}`,
        { path },
        { cause: err },
      );
    }
    const found = collectTools(path, namespace);
    if (found.length === 0) {
      throw new AgentPoolError(
        'TOOL_NOT_FOUND',
        `tool module ${path} exports no tools: export tools made with defineTool, as a default array or by name`,
        { path },
      );
    }
    const prepared = new Map<Tool, Tool>();
    const names = new Set<string>();
    for (const tool of found) {
      if (names.has(tool.name)) {
        throw validationError(`tool module ${path}`, `exports two tools named ${JSON.stringify(tool.name)}`, {
          path,
          tool: tool.name,
        });
      }
      names.add(tool.name);
      prepared.set(tool, this.options.prepare(tool));
    }
    const exports = new Map<string, Tool>();
    for (const [key, value] of Object.entries(namespace)) {
      const tool = isTool(value) ? prepared.get(value) : undefined;
      if (key !== 'default' && tool !== undefined) exports.set(key, tool);
    }
    return Object.freeze({ path, tools: Object.freeze([...prepared.values()]), exports });
  }
}

function collectTools(path: string, namespace: Record<string, unknown>): Tool[] {
  const found = new Set<Tool>();
  const fallback = namespace.default;
  if (Array.isArray(fallback)) {
    fallback.forEach((item: unknown, i) => {
      if (!isTool(item)) {
        throw new AgentPoolError(
          'TOOL_NOT_FOUND',
          `tool module ${path}: default export item ${i} is not a tool made with defineTool`,
          { path, index: i },
        );
      }
      found.add(item);
    });
  } else if (isTool(fallback)) {
    found.add(fallback);
  }
  // A set: a tool exported both by name and in the default array counts once.
  for (const [key, value] of Object.entries(namespace)) {
    if (key !== 'default' && isTool(value)) found.add(value);
  }
  return [...found];
}
