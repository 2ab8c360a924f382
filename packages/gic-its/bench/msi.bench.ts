/**
 * Cost of one MSI through the ITS model — a GITS_TRANSLATER write translated through the device table, the
 * ITT and the collection table, the pending bit set and cleared and the LPI taken by a CPU — against a bare
 * `Map` lookup of (DeviceID, EventID) → INTID.
 */
import { defineBenchSuite } from '@iommukit/core';
import { gicRig } from '../test/gic-rig.js';

const { msi, msiWrite, bus } = gicRig();
const vectors = msi.allocateVectors({ name: 'nic0', deviceId: 0x10 }, 32);
const doorbell = vectors[0]!.message.address;
const table = new Map(vectors.map((v) => [(0x10 << 16) | v.eventId, v.intid]));
let event = 0;

const drain = () => {
  for (const cpu of msi.cpus) {
    cpu.drainUnserviced();
    (cpu.arrivals as unknown[]).length = 0;
  }
  msi.takeOutcomes();
};

const tableReads = (suffix: string) =>
  bus
    .listCounters()
    .filter((c) => c.tag.endsWith(suffix))
    .reduce((n, c) => n + c.reads, 0);

export default defineBenchSuite({
  name: 'GIC ITS',
  about: 'One MSI from the doorbell write to the LPI a CPU takes (GICv3 ITS, IHI 0069).',
  facts: () => {
    msiWrite(doorbell, 0, 0x10); // warms the redistributor's configuration cache
    const its = tableReads('its0:tables');
    const rd = tableReads('gicr0:tables') + tableReads('gicr1:tables');
    msiWrite(doorbell, 0, 0x10);
    const fact =
      `one MSI: ${tableReads('its0:tables') - its} ITS table reads (level-1 device table entry, DTE, ITE, CTE), ` +
      `${tableReads('gicr0:tables') + tableReads('gicr1:tables') - rd} redistributor reads (pending byte set and cleared; configuration cached)`;
    drain();
    return [fact];
  },
  groups: [
    {
      name: 'one MSI',
      baseline: {
        name: 'Map lookup of (DeviceID, EventID)',
        fn: () => {
          event = (event + 1) & 31;
          return table.get((0x10 << 16) | event);
        },
      },
      cases: [
        {
          name: 'GITS_TRANSLATER write → LPI taken by a CPU',
          fn: () => {
            event = (event + 1) & 31;
            msiWrite(doorbell, event, 0x10);
            if (event === 0) drain();
            return msi.cpus[0]!.arrivals.length;
          },
        },
      ],
    },
  ],
});
