/** The mock host driver: domain lifetime, map/unmap rules (errno as the kernel would pick) and probing. */
import { errnoOf, FrameAllocator, hpa, InterruptController, iova, MemoryBus, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { MOCK_VIOMMU_TYPE, MockIommuDriver, type MockPagingDomain } from '../src/index.js';
import { mockSystem, mockSystemsPerTest } from './fixtures.js';

const newSystem = mockSystemsPerTest();

async function setup() {
  const system = await newSystem();
  const { driver } = system.iommu('iommu0');
  return { system, driver, buffer: system.memory.allocFrames(64) };
}

const RW = { read: true, write: true };

describe('mock driver domains', () => {
  it('maps, translates in software, and unmaps exactly what was mapped', async () => {
    const { driver, buffer } = await setup();
    const d = driver.domainAllocPaging();
    d.map(iova(0x10_0000n), buffer, 0x3000n, RW);
    expect(d.iovaToPhys(iova(0x10_1234n))).toBe(buffer + 0x1234n);
    expect(d.iovaToPhys(iova(0x10_3000n))).toBeUndefined();
    expect(d.unmap(iova(0x0f_f000n), 0x5000n)).toBe(0x3000n);
    expect(d.iovaToPhys(iova(0x10_1234n))).toBeUndefined();
    expect(d.unmap(iova(0x10_0000n), 0x3000n)).toBe(0n);
  });

  it.each([
    [
      'an overlapping map',
      (d: MockPagingDomain, b: bigint) => d.map(iova(0x1000n), hpa(b), 0x1000n, RW),
      'EEXIST',
    ],
    [
      'a misaligned IOVA',
      (d: MockPagingDomain, b: bigint) => d.map(iova(0x1800n), hpa(b), 0x1000n, RW),
      'EINVAL',
    ],
    [
      'a misaligned address',
      (d: MockPagingDomain, b: bigint) => d.map(iova(0x8000n), hpa(b + 8n), 0x1000n, RW),
      'EINVAL',
    ],
    ['a zero length', (d: MockPagingDomain, b: bigint) => d.map(iova(0x8000n), hpa(b), 0n, RW), 'EINVAL'],
    [
      'no permission',
      (d: MockPagingDomain, b: bigint) =>
        d.map(iova(0x8000n), hpa(b), 0x1000n, { read: false, write: false }),
      'EINVAL',
    ],
    [
      'an IOVA past the aperture',
      (d: MockPagingDomain, b: bigint) => d.map(iova(1n << 39n), hpa(b), 0x1000n, RW),
      'EINVAL',
    ],
  ])('refuses %s', async (_what, act, code) => {
    const { driver, buffer } = await setup();
    const d = driver.domainAllocPaging() as MockPagingDomain;
    d.map(iova(0n), buffer, 0x2000n, RW);
    expect(errnoOf(() => act(d, buffer))).toBe(code);
    expect(d.iovaToPhys(iova(0x8000n))).toBeUndefined(); // a refused map changes nothing
  });

  it('an overlapping map changes nothing, even where the range was free', async () => {
    const { driver, buffer } = await setup();
    const d = driver.domainAllocPaging();
    d.map(iova(0x3000n), buffer, 0x1000n, RW);
    expect(errnoOf(() => d.map(iova(0x1000n), buffer, 0x4000n, RW))).toBe('EEXIST');
    expect(d.iovaToPhys(iova(0x1000n))).toBeUndefined();
  });

  it('refuses to free an attached domain, frees its tables and domain ID once detached', async () => {
    const { system, driver, buffer } = await setup();
    const before = system.memory.allocatedFrameCount;
    const d = driver.domainAllocPaging() as MockPagingDomain;
    d.map(iova(0n), buffer, 0x1000n, RW);
    d.map(iova(1n << 21n), buffer, 0x1000n, RW);
    expect(d.tablePages).toBe(4); // root, one shared L1, two L2 (the IOVAs differ in their L1 index)
    driver.attachDev(d, system.device('nic0'));
    expect(errnoOf(() => d.free())).toBe('EBUSY');
    driver.attachDev(driver.blockedDomain, system.device('nic0'));
    d.free();
    expect(system.memory.allocatedFrameCount).toBe(before);
    expect(errnoOf(() => d.map(iova(0n), buffer, 0x1000n, RW))).toBe('ENOENT');
    expect(driver.domainAllocPaging().id).toBe(d.id);
  });

  it('moves a device between domains: the old one can be freed, the new one translates', async () => {
    const { system, driver, buffer } = await setup();
    const a = driver.domainAllocPaging();
    const b = driver.domainAllocPaging();
    a.map(iova(0x1000n), buffer, 0x1000n, RW);
    b.map(iova(0x1000n), hpa(buffer + 0x2000n), 0x1000n, RW);
    const nic = system.device('nic0');
    driver.attachDev(a, nic);
    expect(nic.dmaWrite(0x1000n, Uint8Array.of(1), { hpas: true })).toMatchObject({ hpas: [buffer] });
    driver.attachDev(b, nic);
    a.free();
    expect(nic.dmaWrite(0x1000n, Uint8Array.of(1), { hpas: true })).toMatchObject({
      hpas: [buffer + 0x2000n],
    });
  });

  it('refuses a domain from another driver and devices it did not probe', async () => {
    const { system, driver } = await setup();
    driver.domainAllocPaging(); // domain ID 1 is live here too: ownership is by object, not by ID
    const other = await mockSystem();
    const foreign = other.iommu('iommu0').driver.domainAllocPaging();
    expect(errnoOf(() => driver.attachDev(foreign, system.device('nic0')))).toBe('EINVAL');
    expect(errnoOf(() => driver.attachDev(driver.blockedDomain, system.device('legacy0')))).toBe('ENODEV');
    await other.dispose();
  });

  it('refuses a nested attach on a vIOMMU without the device vDEVICE (ENOENT), as the kernel selftest mock', async () => {
    const { system } = await setup();
    const fd = system.openIommufd();
    const nic = fd.bind(system.device('nic0'));
    const nvme = fd.bind(system.device('nvme0'));
    const s2 = fd.hwptAlloc({ devId: nic, ptId: fd.ioasAlloc(), flags: { nestParent: true } });
    const viommu = fd.viommuAlloc(nic, s2, MOCK_VIOMMU_TYPE);
    const nested = fd.hwptAlloc({ devId: nic, ptId: viommu, data: { s1Root: 0x1000n, tag: 1 } });
    expect(errnoOf(() => fd.attach(nic, nested))).toBe('ENOENT');
    expect(fd.attachedHwpt(nic)).toBeUndefined();
    fd.vdeviceAlloc(viommu, nic, 5n);
    expect(fd.attach(nic, nested)).toBe(nested);
    expect(errnoOf(() => fd.attach(nvme, nested))).toBe('ENOENT');
    // Without a vIOMMU there is no vDEVICE to ask for: a nested HWPT on the parent HWPT attaches.
    const direct = fd.hwptAlloc({ devId: nvme, ptId: s2, data: { s1Root: 0x2000n, tag: 2 } });
    expect(fd.attach(nvme, direct)).toBe(direct);
    fd.close();
  });

  it('leaves a released device with an invalid device table entry', async () => {
    const { system, driver } = await setup();
    const nic = system.device('nic0');
    driver.releaseDevice(nic);
    expect(nic.dmaRead(0n, 4)).toMatchObject({ fault: { vendorCode: 'MOCK_CTX_INVALID' } });
  });

  it('has static blocked and identity domains that cannot map', async () => {
    const { driver, buffer } = await setup();
    expect(errnoOf(() => driver.blockedDomain.map(iova(0n), buffer, 0x1000n, RW))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => driver.identityDomain!.unmap(iova(0n), 0x1000n))).toBe('EOPNOTSUPP');
  });
});

describe('mock driver probe', () => {
  it('refuses hardware whose ID register is not the mock magic', () => {
    const bus = new MemoryBus();
    bus.addMmio('other', 0x1000, 0x1000, { read: () => 0x1234, write: () => {} });
    const interrupts = new InterruptController();
    const driver = new MockIommuDriver({
      instance: 'other',
      base: hpa(0x1000n),
      options: {
        sidBits: 8,
        pasidBits: 0,
        iotlbEntries: 8,
        faultLogMaxLog2: 10,
        dirtyTracking: false,
        nesting: false,
        pri: false,
        interruptRemapping: false,
        cachingMode: false,
      },
      bus,
      tracer: new Tracer(),
      irq: (name) => interrupts.line(name),
      memory: new FrameAllocator([]),
      reportFault: () => {},
      reportPageRequest: () => {},
    });
    expect(errnoOf(() => driver.probe())).toBe('ENODEV');
  });

  it('releases its tables and disables translation on shutdown', async () => {
    const system = await mockSystem();
    const frames = system.memory.allocatedFrameCount;
    const instance = system.iommu('iommu0');
    instance.driver.shutdown();
    // Device table (256 × 32 bytes: 2 frames), fault log and page request queue (1 frame each), and the
    // interrupt remapping table (1024 × 16 bytes: 4 frames).
    expect(system.memory.allocatedFrameCount).toBe(frames - 8);
    expect(system.device('nic0').dmaRead(0n, 4)).toMatchObject({ fault: { vendorCode: 'MOCK_DISABLED' } });
  });
});
