/** The error an API call throws, for tests that check more of it than its errno. */
import { IommufdError } from '../src/errors/iommufd-error.js';

/** The IommufdError `fn` throws; another error is rethrown, and throwing nothing fails the test. */
export function iommufdErrorOf(fn: () => unknown): IommufdError {
  try {
    fn();
  } catch (error) {
    if (error instanceof IommufdError) return error;
    throw error;
  }
  throw new Error('expected an IommufdError, and nothing was thrown');
}
