import { describe, expect, it } from 'vitest';
import { IommufdError } from '../errors/iommufd-error.js';
import { pollTimeout } from './poll-limit.js';

describe('pollTimeout', () => {
  it('is ETIMEDOUT naming the instance, the wait and its context', () => {
    const error = pollTimeout('smmu0', 'CMD_SYNC did not complete', { cons: 3 });
    expect(error).toBeInstanceOf(IommufdError);
    expect(error.code).toBe('ETIMEDOUT');
    expect(error.context).toEqual({ instance: 'smmu0', cons: 3 });
    expect(pollTimeout('smmu1', 'GBPA.Update stuck').context).toEqual({ instance: 'smmu1' });
  });
});
