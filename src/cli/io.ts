/**
 * What a CLI command reads from and writes to, passed in rather than reached for, so commands
 * can be driven from code as well as from `main.ts`.
 */

/** The process-facing side of a command. */
export interface CliIo {
  /** Writes one line to standard output. */
  out(line: string): void;
  /** Writes one line to standard error. */
  err(line: string): void;
  /** Environment variables (`AGENTPOOL_*`). */
  env: Readonly<Record<string, string | undefined>>;
}

/** The real process: stdout, stderr and `process.env`. */
export function processIo(): CliIo {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
}
