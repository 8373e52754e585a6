/**
 * Where a YAML or JSON file is broken, said the way an editor would: the line and column, and
 * the offending line (with the one before it) under a caret. Used by `readStructuredFile` for
 * config files and agents files, whose parse errors otherwise name only a character offset (JSON)
 * or point into the middle of a long message (YAML).
 */

/** A syntax error's position (1-based) and a short reason without the parser's own excerpt. */
export interface SyntaxErrorPosition {
  reason: string;
  line?: number;
  column?: number;
}

/** Lines whose text must not be echoed: a config file may hold the admin key. */
const SECRET_LINE = /adminKey|secret|password|token|api[_-]?key/i;

/** The reason and position of a `yaml` parse error (`linePos`) or a `JSON.parse` error. */
export function syntaxErrorPosition(err: unknown): SyntaxErrorPosition {
  if (!(err instanceof Error)) return { reason: String(err) };
  const linePos = (err as { linePos?: readonly { line: number; col: number }[] }).linePos;
  if (Array.isArray(linePos) && linePos[0] !== undefined) {
    // yaml appends " at line L, column C:" and an excerpt; we print our own.
    const reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return { reason, line: linePos[0].line, column: linePos[0].col };
  }
  // JSON.parse: "… in JSON at position 11 (line 3 column 2)", or "Unexpected token '}', "<text>" is
  // not valid JSON", which repeats the file: keep only the part before the excerpt.
  const first = err.message.split('\n')[0]!;
  const at = / in JSON at position \d+ \(line (\d+) column (\d+)\)$/.exec(first);
  if (at !== null) {
    return { reason: first.slice(0, at.index), line: Number(at[1]), column: Number(at[2]) };
  }
  const token = /^(Unexpected token .+?), (?:\.\.\.)?".*$/.exec(first);
  return { reason: token?.[1] ?? first };
}

/**
 * The offending line of `text` with the line before it, numbered, and a caret under `column`:
 *
 *       3 |     tools: [x
 *     > 4 |   - name: b
 *         |   ^
 */
export function codeFrame(text: string, line: number, column: number): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  const from = Math.max(1, line - 1);
  const to = Math.min(line, lines.length);
  const width = String(to).length;
  const show = (n: number) => {
    const content = lines[n - 1] ?? '';
    return SECRET_LINE.test(content) ? '(line not shown: it may hold a secret)' : content;
  };
  const frame: string[] = [];
  for (let n = from; n <= to; n++) {
    frame.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${show(n)}`.trimEnd());
  }
  if (line <= lines.length) frame.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  return frame;
}

/**
 * One message for a file that does not parse, `is not valid: YAML syntax error at line 4, column 3:
 * <reason>` followed by the code frame; without a position when the parser gave none.
 */
export function describeSyntaxError(text: string, err: unknown, format: 'YAML' | 'JSON'): string {
  const { reason, line, column } = syntaxErrorPosition(err);
  if (line === undefined || column === undefined) return `is not valid: ${format} syntax error: ${reason}`;
  return [
    `is not valid: ${format} syntax error at line ${line}, column ${column}: ${reason}`,
    ...codeFrame(text, line, column).map((l) => `  ${l}`),
  ].join('\n');
}
