/**
 * Cost of one MSI through the ITS model — a GITS_TRANSLATER write translated through the device table, the
 * ITT and the collection table, the pending bit set and cleared and the LPI taken by a CPU — against a
 * baseline measured in the same run: a `Map` lookup of (DeviceID, EventID) → INTID. Prints the memory
 * accesses one MSI makes (reads of the tables in memory, the configuration byte from the cache).
 */
import { afterAll, bench, describe } from 'vitest';
import { gicRig } from '../test/gic-rig.js';

const { msi, msiWrite, bus } = gicRig();
const vectors = msi.allocateVectors({ name: 'nic0', deviceId: 0x10 }, 32);
const doorbell = vectors[0]!.message.address;
const table = new Map(vectors.map((v) => [(0x10 << 16) | v.eventId, v.intid]));
let sink = 0;
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
msiWrite(doorbell, 0, 0x10); // warms the redistributor's configuration cache
const its = tableReads('its0:tables');
const rd = tableReads('gicr0:tables') + tableReads('gicr1:tables');
msiWrite(doorbell, 0, 0x10);
console.log(
  `one MSI: ${tableReads('its0:tables') - its} ITS table reads (level-1 device table entry, DTE, ITE, CTE), ` +
    `${tableReads('gicr0:tables') + tableReads('gicr1:tables') - rd} redistributor reads (pending byte set and cleared; configuration cached)`,
);
drain();

describe('one MSI', () => {
  bench('baseline: Map lookup of (DeviceID, EventID)', () => {
    event = (event + 1) & 31;
    sink += table.get((0x10 << 16) | event) ?? 0;
  });

  bench('GITS_TRANSLATER write → LPI taken by a CPU', () => {
    event = (event + 1) & 31;
    msiWrite(doorbell, event, 0x10);
    if (event === 0) drain();
    sink += msi.cpus[0]!.arrivals.length;
  });
});

// Every case folds its results into `sink`; checking it keeps the work observable to the optimiser.
afterAll(() => {
  if (!Number.isFinite(sink)) throw new Error('a benchmark produced a non-finite checksum');
});
