/**
 * The versions of tool (and hook) modules: which content of each file is loaded, when a changed
 * file is imported again, and the bounds on what that leaves in memory.
 *
 * Node cannot unload an ES module, and `import()` of a URL it imported before returns the first
 * result, so a changed file is imported under `file:///…/x.ts?v=<hash of its content>`. The URL
 * is a function of the content: a file flipping back to an earlier content, or loaded again after
 * it left the cache, reuses the module Node already holds. What does grow is one module per
 * distinct content of a file, and that is capped twice: `maxModuleVersions` distinct contents per
 * file and `maxReloads` re-imports per loader. Past a cap, a changed file is not imported: the
 * loaded version keeps serving, and the refusal is counted and reported. The check on each load
 * is a synchronous `stat` (mtime and size); the content is read and hashed only when they moved.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { AgentPoolError } from '../core/errors.ts';

/** One content of one module file, as imported. */
export interface ModuleVersion {
  /** The absolute file path. */
  readonly path: string;
  /** The first 16 hex digits of the SHA-256 of the file's content. */
  readonly hash: string;
  /** The URL it was imported from (the first content of a file is imported without `?v=`). */
  readonly url: string;
  readonly namespace: Record<string, unknown>;
}

/** Counters of a {@link ModuleVersions}, since it was created. */
export interface ModuleVersionStats {
  /** Modules in the cache now. */
  modules: number;
  /** Modules brought into the cache: a file's first use, or a use after it left the cache. */
  loads: number;
  /** Cached modules replaced by another content of their file (imported, or reused by hash). */
  reloads: number;
  /** Loads served by the cached version: the file's mtime and size (or else its content) unchanged. */
  cacheHits: number;
  /** Changed files not imported because `maxModuleVersions` or `maxReloads` was reached. */
  reloadsRefused: number;
  /** Distinct module URLs imported into Node (what stays in memory until the process ends). */
  versions: number;
}

/** What a refused reload reports. */
export interface RefusedReload {
  readonly path: string;
  readonly hash: string;
  readonly limit: 'maxModuleVersions' | 'maxReloads';
  readonly max: number;
}

/** Bounds and callbacks of a {@link ModuleVersions}. */
export interface ModuleVersionsConfig {
  /** Whether a cached module's file is checked (stat) on each load. */
  readonly reload: boolean;
  /** Modules kept in the cache (least recently used dropped beyond it). */
  readonly maxModules: number;
  /** Distinct contents of one file imported, at most. */
  readonly maxModuleVersions: number;
  /** Imports of a changed file, over the loader's life, at most. */
  readonly maxReloads: number;
  /** Told of each refused reload (the pool logs it). */
  readonly onRefused: (refused: RefusedReload) => void;
}

interface Entry {
  version: ModuleVersion;
  mtimeMs: number;
  size: number;
}

/** The cache of module versions; see the file header. */
export class ModuleVersions {
  readonly #config: ModuleVersionsConfig;
  /** By absolute path; Map order is recency order (a hit re-inserts), so dropping the first is an LRU. */
  readonly #cache = new Map<string, Entry>();
  /** Checks in flight, so concurrent loads of one file stat, hash and import it once. */
  readonly #checks = new Map<string, Promise<ModuleVersion>>();
  /**
   * Every URL imported, by path then hash: one entry per module Node holds for the process's life
   * (bounded by the caps above for re-imports; one per distinct file otherwise, as Node's own map).
   */
  readonly #imported = new Map<string, Map<string, string>>();
  #loads = 0;
  #reloads = 0;
  #cacheHits = 0;
  #refused = 0;
  #reimports = 0;
  #versions = 0;

  constructor(config: ModuleVersionsConfig) {
    this.#config = config;
  }

  get size(): number {
    return this.#cache.size;
  }

  stats(): ModuleVersionStats {
    return {
      modules: this.#cache.size,
      loads: this.#loads,
      reloads: this.#reloads,
      cacheHits: this.#cacheHits,
      reloadsRefused: this.#refused,
      versions: this.#versions,
    };
  }

  /** The cached version of a file, if any (no check). */
  cached(path: string): ModuleVersion | undefined {
    return this.#cache.get(path)?.version;
  }

  /** Paths in the cache, least recently used first. */
  paths(): string[] {
    return [...this.#cache.keys()];
  }

  /**
   * The version to serve for `path` (absolute): the cached one when the file is unchanged (or
   * `reload` is off and `force` is not set), else its current content, imported when new.
   */
  current(path: string, force = false): Promise<ModuleVersion> {
    const pending = this.#checks.get(path);
    if (pending !== undefined) return pending;
    const cached = this.#cache.get(path);
    // The common case answers at once: a cached module whose file kept its mtime and size.
    if (cached !== undefined && ((!force && !this.#config.reload) || unchanged(path, cached))) {
      this.#hit(path, cached);
      return Promise.resolve(cached.version);
    }
    const check = this.#check(path, cached).finally(() => this.#checks.delete(path));
    this.#checks.set(path, check);
    return check;
  }

  forget(path: string): boolean {
    return this.#cache.delete(path);
  }

  clear(): void {
    this.#cache.clear();
  }

  #hit(path: string, entry: Entry): void {
    this.#cacheHits++;
    this.#cache.delete(path);
    this.#cache.set(path, entry);
  }

  async #check(path: string, cached: Entry | undefined): Promise<ModuleVersion> {
    let mtimeMs: number;
    let size: number;
    let source: Buffer;
    try {
      // Synchronous: a local stat takes a microsecond or two, where the thread-pool round trip of
      // fs.promises.stat took 30-50 µs of every activation using a module.
      const info = statSync(path);
      if (!info.isFile()) throw new Error('not a file');
      ({ mtimeMs, size } = info);
      source = await readFile(path);
    } catch {
      throw new AgentPoolError('TOOL_NOT_FOUND', `tool module ${path} does not exist`, { path });
    }
    const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
    if (cached !== undefined && cached.version.hash === hash) {
      // Touched or rewritten with the same content: nothing to load.
      cached.mtimeMs = mtimeMs;
      cached.size = size;
      this.#hit(path, cached);
      return cached.version;
    }
    const known = this.#imported.get(path);
    let url = known?.get(hash);
    if (url === undefined && known !== undefined) {
      const limit =
        known.size >= this.#config.maxModuleVersions
          ? ('maxModuleVersions' as const)
          : this.#reimports >= this.#config.maxReloads
            ? ('maxReloads' as const)
            : undefined;
      if (limit !== undefined) {
        this.#refused++;
        this.#config.onRefused({ path, hash, limit, max: this.#config[limit] });
        if (cached !== undefined) {
          // Not looked at again until the file changes again.
          cached.mtimeMs = mtimeMs;
          cached.size = size;
          return cached.version;
        }
        throw new AgentPoolError(
          'TOOL_NOT_FOUND',
          `tool module ${path} changed, but this process will not import it again (tools.${limit} ${this.#config[limit]} reached); restart it to load the new content`,
          { path, limit },
        );
      }
    }
    if (url === undefined) {
      const base = pathToFileURL(path).href;
      url = known === undefined ? base : `${base}?v=${hash}`;
      if (known === undefined) this.#imported.set(path, new Map([[hash, url]]));
      else {
        known.set(hash, url);
        this.#reimports++;
      }
      this.#versions++; // counted before the import: Node keeps a module that failed too
    }
    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(url)) as Record<string, unknown>;
    } catch (err) {
      throw new AgentPoolError(
        'TOOL_NOT_FOUND',
        `tool module ${path} failed to load: ${err instanceof Error ? err.message : String(err)}`,
        { path },
        { cause: err },
      );
    }
    const version: ModuleVersion = Object.freeze({ path, hash, url, namespace });
    // The entry of this check, unless the file left the cache meanwhile (forget, clear).
    if (cached !== undefined && this.#cache.get(path) === cached) this.#reloads++;
    else this.#loads++;
    this.#cache.delete(path);
    this.#cache.set(path, { version, mtimeMs, size });
    while (this.#cache.size > this.#config.maxModules) {
      this.#cache.delete(this.#cache.keys().next().value as string);
    }
    return version;
  }
}

/** Whether a cached module's file kept its mtime and size; false when it cannot be read (the check says why). */
function unchanged(path: string, entry: Entry): boolean {
  try {
    const info = statSync(path, { throwIfNoEntry: false });
    return info !== undefined && info.isFile() && info.mtimeMs === entry.mtimeMs && info.size === entry.size;
  } catch {
    return false;
  }
}
