/**
 * IOAS map and unmap of 1 GiB into an attached paging domain (the iommufd path: IoPagetable fills every
 * attached domain, unmap waits for the IOTLB sync). Domains: a VMSAv8-64 stage-1 table (4K granule, the
 * shared io-pgtable engine) restricted to 4 KiB pages — 262144 leaf entries — or allowed 2 MiB blocks —
 * 512 entries; and the mock IOMMU's own page table through the whole iommufd stack. The baseline writes
 * 262144 8-byte entries into a typed array, the least any 4 KiB mapping of 1 GiB must do.
 */
import {
  defineBenchSuite,
  FrameAllocator,
  hostMemory,
  type IommuDomain,
  IoPagetable,
  MemoryBus,
  iova as makeIova,
  type Prot,
} from '@iommukit/core';
import { IoPageTable, vmsaFormat } from '@iommukit/pagetables';
import { mockSystem } from '../test/fixtures.js';

const GiB = 1n << 30n;
const PAGES = Number(GiB / 4096n);
const RAM_BASE = 0x8000_0000;
const RW = { read: true, write: true } as const;

/** A paging domain over the shared engine, flushing nothing (no hardware behind it): the software cost. */
function vmsaDomain(pageSizes: bigint) {
  const bus = new MemoryBus();
  bus.addRam('dram', RAM_BASE, 4 * 1024 ** 3);
  const memory = new FrameAllocator([{ base: RAM_BASE + 2 ** 31, size: 2 ** 31 }], (b, n) =>
    bus.discardRam(b, n),
  );
  const table = new IoPageTable(
    vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 }),
    { bus, memory, counter: bus.counter('pt') },
    { pageSizes },
  );
  const domain: IommuDomain = {
    id: 1,
    type: 'paging',
    pgsizeBitmap: table.pgsizeBitmap,
    aperture: { start: makeIova(0n), end: makeIova((1n << 48n) - 1n) },
    map: (iova, pa, size, prot: Prot) => table.map(iova, pa, size, prot),
    unmap: (iova, size) => table.unmap(iova, size),
    iotlbSync: () => {},
    iovaToPhys: (iova) => table.iovaToPhys(iova) as never,
    free: () => table.free(),
  };
  const ioas = new IoPagetable();
  ioas.addDomain(domain);
  return { ioas, table, bus };
}

function mapUnmap(ioas: IoPagetable): void {
  ioas.map(0x4000_0000n, hostMemory(0x1_0000_0000n, GiB), 0n, GiB, RW);
  ioas.unmap(0x4000_0000n, GiB);
}

const small = vmsaDomain(1n << 12n);
const blocks = vmsaDomain((1n << 12n) | (1n << 21n));
const mock = await mockSystem({ memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '4GiB' }] } });
const fd = mock.openIommufd();
const ioasId = fd.ioasAlloc();
fd.attach(fd.bind(mock.device('nic0')), ioasId);
const mockMemory = hostMemory(mock.memory.allocBytes(Number(GiB), 2 * 1024 * 1024), GiB);

/** What a map leaves behind, measured once. */
function facts(): string[] {
  const lines: string[] = [];
  for (const [name, d] of [
    ['4 KiB pages', small],
    ['2 MiB blocks', blocks],
  ] as const) {
    d.ioas.map(0x4000_0000n, hostMemory(0x1_0000_0000n, GiB), 0n, GiB, RW);
    lines.push(
      `VMSAv8-64 S1, 1 GiB as ${name}: ${d.table.tablePages} table pages, ${d.bus.allocatedBytes / 1024} KiB of tables`,
    );
    d.ioas.unmap(0x4000_0000n, GiB);
    lines.push(`  after unmap: ${d.table.tablePages} table page(s) left`);
  }
  const before = mock.bus.allocatedBytes;
  mockMapUnmap(() =>
    lines.push(
      `mock page table, 1 GiB as 4 KiB pages: ${(mock.bus.allocatedBytes - before) / 1024} KiB of tables`,
    ),
  );
  return lines;
}

function mockMapUnmap(between?: () => void): void {
  fd.ioasMap({
    ioasId,
    memory: mockMemory,
    length: GiB,
    iova: 0x4000_0000n,
    readable: true,
    writeable: true,
  });
  between?.();
  fd.ioasUnmap(ioasId, 0x4000_0000n, GiB);
}

const entries = new Uint32Array(PAGES * 2);

export default defineBenchSuite({
  name: 'IOAS map',
  about: 'IOAS map + unmap of 1 GiB into an attached paging domain, through IoPagetable and through iommufd.',
  facts,
  groups: [
    {
      name: 'IOAS map + unmap of 1 GiB into an attached paging domain',
      baseline: {
        name: 'write 262144 8-byte entries into a typed array',
        fn: () => {
          for (let i = 0; i < PAGES; i++) {
            entries[2 * i] = (i * 4096 + 0x443) >>> 0;
            entries[2 * i + 1] = 1;
          }
          return entries[5];
        },
      },
      cases: [
        {
          name: 'VMSAv8-64 S1 table, 4 KiB pages (262144 entries)',
          target: 0.5,
          fn: () => mapUnmap(small.ioas),
        },
        { name: 'VMSAv8-64 S1 table, 2 MiB blocks (512 entries)', fn: () => mapUnmap(blocks.ioas) },
        { name: 'iommufd + mock IOMMU page table, 4 KiB pages (262144 entries)', fn: () => mockMapUnmap() },
      ],
    },
  ],
});
