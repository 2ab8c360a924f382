import { describe, expect, it } from 'vitest';
import { IommufdError } from '../errors/iommufd-error.js';
import { type BenchGroup, defineBenchSuite } from './bench-suite.js';

const op = (name: string, target?: number) => ({
  name,
  fn: () => 1,
  ...(target === undefined ? {} : { target }),
});
const group = (cases = [op('case')], name = 'g'): BenchGroup => ({ name, baseline: op('base'), cases });

function problem(suite: Parameters<typeof defineBenchSuite>[0]): string {
  try {
    defineBenchSuite(suite);
  } catch (error) {
    expect(error).toBeInstanceOf(IommufdError);
    expect((error as IommufdError).code).toBe('EINVAL');
    return (error as Error).message;
  }
  throw new Error('defineBenchSuite accepted the suite');
}

describe('defineBenchSuite', () => {
  it('returns a well-formed suite as it is', () => {
    const suite = { name: 's', about: 'a', groups: [group([op('x', 0.5), op('y')])] };
    expect(defineBenchSuite(suite)).toBe(suite);
  });

  it('names every problem of a malformed suite in one error', () => {
    expect(problem({ name: '', about: '', groups: [] })).toBe(
      'EINVAL: bench suite "": the suite has no name; it has no groups',
    );
    expect(problem({ name: 's', about: '', groups: [group([], 'empty')] })).toBe(
      'EINVAL: bench suite "s": group "empty" has no cases',
    );
  });

  it('refuses two cases with one name in a group, the baseline included', () => {
    expect(problem({ name: 's', about: '', groups: [group([op('base')])] })).toContain(
      'group "g" has two cases named "base"',
    );
    expect(defineBenchSuite({ name: 's', about: '', groups: [group(), group()] }).groups).toHaveLength(2);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses target %s', (target) => {
    expect(problem({ name: 's', about: '', groups: [group([op('x', target)])] })).toContain(
      `case "x" has target ${target}`,
    );
  });
});
