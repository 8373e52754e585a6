/**
 * Module tools: a JS/TS file that exports tools made with `defineTool`, either as a default-export
 * array or as named exports. The loader keeps each file's tools in a bounded cache on the loader
 * instance, so activating agents never re-imports or re-discovers a module; a file that changed
 * is imported again at its next load (module-versions.ts says how, and what bounds the cost).
 * Only the entry file is checked: a module it imports keeps the content Node first loaded.
 */
import { extname, isAbsolute, relative, resolve } from 'node:path';
import { AgentPoolError, validationError } from '../core/errors.ts';
import { boolOption, intOption } from '../core/options.ts';
import {
  type ModuleVersion,
  ModuleVersions,
  type ModuleVersionStats,
  type RefusedReload,
} from './module-versions.ts';
import { isTool, type Tool } from './tool.ts';

export type { ModuleVersionStats, RefusedReload } from './module-versions.ts';

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
  /**
   * Whether each load checks the file (mtime and size, then its content) and imports it again
   * when it changed; off, a cached module is only re-checked by `refresh()`. @default true
   */
  reload?: boolean;
  /** Distinct contents of one file imported over the loader's life; later changes are refused. @default 20 */
  maxModuleVersions?: number;
  /** Re-imports of changed files over the loader's life; later changes are refused. @default 1000 */
  maxReloads?: number;
  /** Applied once to every tool when its module loads (a catalog binds tools to its validator). @default identity */
  prepare?: (tool: Tool) => Tool;
  /** Told when a changed file is not imported because a cap was reached. @default ignores */
  onReloadRefused?: (refused: RefusedReload) => void;
}

/** {@link ModuleToolLoaderOptions} with every default applied. */
export type ResolvedModuleToolLoaderOptions = Required<ModuleToolLoaderOptions>;

/** The tools one module exports: the default array's in its order, then named ones by export name. */
export interface ModuleTools {
  /** The absolute path the module was imported from. */
  readonly path: string;
  /** The hash of the file content these tools come from. */
  readonly version: string;
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
  for (const field of ['prepare', 'onReloadRefused'] as const) {
    if (input[field] !== undefined && typeof input[field] !== 'function') {
      throw validationError(`${prefix}${field}`, 'must be a function');
    }
  }
  return {
    baseDir: resolve(input.baseDir ?? process.cwd()),
    allowOutsideBaseDir: boolOption(`${prefix}allowOutsideBaseDir`, input.allowOutsideBaseDir, false),
    maxModules: intOption(`${prefix}maxModules`, input.maxModules, 1000),
    reload: boolOption(`${prefix}reload`, input.reload, true),
    maxModuleVersions: intOption(`${prefix}maxModuleVersions`, input.maxModuleVersions, 20),
    maxReloads: intOption(`${prefix}maxReloads`, input.maxReloads, 1000, 0),
    prepare: input.prepare ?? ((tool) => tool),
    onReloadRefused: input.onReloadRefused ?? (() => undefined),
  };
}

/** A module whose cached version `refresh()` replaced. */
export interface ModuleChange {
  readonly path: string;
  /** Content hashes: the version replaced, and the one loaded now. */
  readonly from: string;
  readonly to: string;
}

/** Loads tool modules by dynamic import and caches their tools per resolved path and content. */
export class ModuleToolLoader {
  readonly options: ResolvedModuleToolLoaderOptions;
  readonly #versions: ModuleVersions;
  /** The tools of each version, worked out once (a version's namespace never changes). */
  readonly #tools = new WeakMap<ModuleVersion, ModuleTools>();

  constructor(options: ModuleToolLoaderOptions = {}) {
    this.options = resolveModuleToolLoaderOptions(options);
    this.#versions = new ModuleVersions({
      reload: this.options.reload,
      maxModules: this.options.maxModules,
      maxModuleVersions: this.options.maxModuleVersions,
      maxReloads: this.options.maxReloads,
      onRefused: this.options.onReloadRefused,
    });
  }

  /** Modules currently cached. */
  get size(): number {
    return this.#versions.size;
  }

  /** Loads, reloads, cache hits, refused reloads and module versions imported, since creation. */
  stats(): ModuleVersionStats {
    return this.#versions.stats();
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

  /** Every tool of a module: imported on first use, again when its file changed (`reload`). */
  async load(path: string): Promise<ModuleTools> {
    return this.#toolsOf(await this.#versions.current(this.resolvePath(path)));
  }

  /** One tool of a module, by tool name or, failing that, by export name. */
  async loadTool(path: string, name: string): Promise<Tool> {
    return pickTool(await this.load(path), name);
  }

  /**
   * One named export of a module (a hook function), with the module's version; the module is
   * loaded and checked as for tools, but need not export any. Undefined when there is no such export.
   */
  async loadExport(path: string, name: string): Promise<{ value: unknown; path: string; version: string }> {
    const version = await this.#versions.current(this.resolvePath(path));
    return { value: version.namespace[name], path: version.path, version: version.hash };
  }

  /** The content hash of a cached module's version, without checking the file. */
  versionOf(path: string): string | undefined {
    try {
      return this.#versions.cached(this.resolvePath(path))?.hash;
    } catch {
      return undefined;
    }
  }

  /** The modules cached now: path and version, least recently used first. */
  cachedModules(): { path: string; version: string; tools: readonly Tool[] | undefined }[] {
    return this.#versions.paths().flatMap((path) => {
      const version = this.#versions.cached(path);
      return version === undefined
        ? []
        : [{ path, version: version.hash, tools: this.#tools.get(version)?.tools }];
    });
  }

  /**
   * Checks every cached module's file now (or only `path`'s), whatever `reload` says, and loads
   * those that changed; resolves with what changed. A file that fails to load now (deleted, a
   * syntax error) keeps its cached version and is listed in `failed`.
   */
  async refresh(
    path?: string,
  ): Promise<{ changed: ModuleChange[]; failed: { path: string; error: string }[] }> {
    const paths = path === undefined ? this.#versions.paths() : [this.resolvePath(path)];
    const changed: ModuleChange[] = [];
    const failed: { path: string; error: string }[] = [];
    await Promise.all(
      paths.map(async (p) => {
        const before = this.#versions.cached(p);
        if (before === undefined) return;
        try {
          const after = await this.#versions.current(p, true);
          if (after.hash !== before.hash) changed.push({ path: p, from: before.hash, to: after.hash });
        } catch (err) {
          failed.push({ path: p, error: err instanceof Error ? err.message : String(err) });
        }
      }),
    );
    return { changed, failed };
  }

  /**
   * Drops one cached module (failure recovery's `recover`): the next load reads and checks it
   * again. False when it was not cached or the path is refused.
   */
  forget(path: string): boolean {
    let absolute: string;
    try {
      absolute = this.resolvePath(path);
    } catch {
      return false;
    }
    return this.#versions.forget(absolute);
  }

  /** Drops every cached module; the next load checks each file again. */
  clear(): void {
    this.#versions.clear();
  }

  #toolsOf(version: ModuleVersion): ModuleTools {
    let module = this.#tools.get(version);
    if (module === undefined) {
      module = this.#collect(version);
      this.#tools.set(version, module);
    }
    return module;
  }

  #collect({ path, hash, namespace }: ModuleVersion): ModuleTools {
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
    return Object.freeze({ path, version: hash, tools: Object.freeze([...prepared.values()]), exports });
  }
}

/** One tool of a loaded module, by tool name or, failing that, by export name; `TOOL_NOT_FOUND` otherwise. */
export function pickTool(module: ModuleTools, name: string): Tool {
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
