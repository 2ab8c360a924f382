// A suite whose setup fails: `iommukit bench` reports it and exits 1.
import { defineBenchSuite } from '@iommukit/core';

export default defineBenchSuite({
  name: 'throws',
  about: 'Fails while computing its facts.',
  facts: () => {
    throw new Error('the rig could not be built');
  },
  groups: [{ name: 'g', baseline: { name: 'b', fn: () => 0 }, cases: [{ name: 'c', fn: () => 1 }] }],
});
