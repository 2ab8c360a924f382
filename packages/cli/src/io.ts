/** Where a command writes. Tests capture it; the binary maps it to the process streams. */
export interface CliIo {
  /** Machine-readable or primary output (stdout). */
  out(text: string): void;
  /** Diagnostics and human-oriented messages when `--json` owns stdout (stderr). */
  err(text: string): void;
  /** Working directory that relative paths resolve against. */
  readonly cwd: string;
  /** Whether `out` renders ANSI colours (a terminal, or `FORCE_COLOR`); plain text when absent. */
  readonly color?: boolean;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that cannot do what was asked for a reason outside the config (exit 1, no help text). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}
