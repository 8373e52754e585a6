/**
 * An instance's tools when some follow a source that changes (an MCP server's cached list): the
 * parts in reference order, composed into one array that keeps its identity while no part changed
 * (the runner caches tool definitions per array), so reading it on every run costs a few
 * comparisons. A name a later part repeats is left out there (activation refuses repeats; a list
 * that changes later must not break the agent).
 */
import type { Tool } from './tool.ts';

/** A part whose tools may change; `current()` must not wait on I/O. */
export interface ToolSource {
  current(): readonly Tool[];
}

/** An instance's tools: `current` is read at the start of each run. */
export interface LiveTools {
  readonly current: readonly Tool[];
}

/** Tools that never change. */
export function fixedTools(tools: readonly Tool[]): LiveTools {
  return { current: tools };
}

/** Tools composed of fixed parts and sources, recomposed only when a source's array changed. */
export class ComposedTools implements LiveTools {
  readonly #parts: readonly (readonly Tool[] | ToolSource)[];
  #seen: (readonly Tool[])[] = [];
  #current: readonly Tool[] = [];

  constructor(parts: readonly (readonly Tool[] | ToolSource)[]) {
    this.#parts = parts;
  }

  get current(): readonly Tool[] {
    const arrays = this.#parts.map((p) => (isSource(p) ? p.current() : p));
    if (arrays.length === this.#seen.length && arrays.every((a, i) => a === this.#seen[i]))
      return this.#current;
    const names = new Set<string>();
    const tools: Tool[] = [];
    for (const array of arrays) {
      for (const tool of array) {
        if (names.has(tool.name)) continue;
        names.add(tool.name);
        tools.push(tool);
      }
    }
    this.#seen = arrays;
    this.#current = tools;
    return tools;
  }
}

function isSource(part: readonly Tool[] | ToolSource): part is ToolSource {
  return !Array.isArray(part);
}
