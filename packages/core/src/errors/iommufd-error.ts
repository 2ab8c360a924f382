import type { Errno } from './errno.js';

/** Extra facts about a failed call, printed with the error and kept for programmatic checks. */
export type ErrorContext = Readonly<Record<string, string | number | bigint | boolean | undefined>>;

/**
 * Thrown when a caller misuses the API (the role of a failed ioctl). `code` is stable and follows the
 * kernel's errno choice for the same mistake; `context` names the objects involved.
 */
export class IommufdError extends Error {
  override readonly name = 'IommufdError';
  readonly code: Errno;
  readonly context: ErrorContext;

  constructor(code: Errno, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
    this.context = context;
  }
}

/** True when `error` is an {@link IommufdError}, optionally with the given code. */
export function isIommufdError(error: unknown, code?: Errno): error is IommufdError {
  return error instanceof IommufdError && (code === undefined || error.code === code);
}

/**
 * Runs `fn` and returns the code of the {@link IommufdError} it threw, or undefined when it returned.
 * Other errors propagate. For tests and conformance checks that assert the kernel's errno choice.
 */
export function errnoOf(fn: () => unknown): Errno | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof IommufdError) return error.code;
    throw error;
  }
  return undefined;
}
