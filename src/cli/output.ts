/**
 * How client commands print what the server answered: aligned tables, a record as YAML (or
 * JSON with `--json`), timestamps as ISO strings.
 */
import { stringify } from 'yaml';
import type { CliIo } from './io.ts';

/** Rows padded into columns two spaces apart; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths = (rows[0] ?? []).map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Epoch milliseconds as ISO 8601; `-` for null or missing. */
export function iso(ms: unknown): string {
  return typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString() : '-';
}

/** Prints a value as indented JSON, or as YAML (without line wrapping) for people. */
export function printRecord(io: CliIo, value: unknown, json: boolean | undefined): void {
  io.out(json === true ? JSON.stringify(value, null, 2) : stringify(value, { lineWidth: 0 }).trimEnd());
}
