// A suite small enough for `iommukit bench --quick` in a test: a baseline and one case with a target.
import { defineBenchSuite } from '@iommukit/core';

const values = new Map([[1, 2]]);
console.log('a suite printing to stdout must not break the protocol');

export default defineBenchSuite({
  name: 'tiny',
  about: 'A Map lookup against an array scan.',
  facts: () => ['one fact'],
  groups: [
    {
      name: 'lookups',
      baseline: { name: 'Map.get', fn: () => values.get(1) },
      cases: [{ name: 'Array.find', fn: () => [1, 2, 3].find((v) => v === 3), target: 0.01 }],
    },
  ],
});
