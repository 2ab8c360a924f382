/** MSI doorbell pages iommufd maps for its devices (msi-mappings.ts), driven through `IommuFd`. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asFakeDomain, FAKE_SW_MSI } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { type Hpa, iova, U64_MAX } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';

const PAGE = 0x1000n;

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

describe('MSI passthrough (ioasMapMsi)', () => {
  it('reserves the doorbell GPA in the IOAS: an automatic IOAS_MAP that would land there goes past it, a fixed one is EINVAL', () => {
    const { fd, memory } = r;
    // On a fresh IOAS, one page is allocated at the first page above IOVA 0 (Linux iopt_alloc_iova).
    const probe = fd.ioasAlloc();
    expect(fd.ioasMap({ ioasId: probe, memory, length: PAGE, ...RW })).toBe(PAGE);

    const ioas = fd.ioasAlloc();
    fd.ioasMapMsi(ioas, r.devId0, PAGE);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual([
      { start: 0n, last: PAGE - 1n },
      { start: 2n * PAGE, last: U64_MAX },
    ]);
    expect(errnoOf(() => fd.ioasMap({ ioasId: ioas, memory, length: PAGE, iova: PAGE, ...RW }))).toBe(
      'EINVAL',
    );
    expect(fd.ioasMap({ ioasId: ioas, memory, length: PAGE, ...RW })).toBe(2n * PAGE);
    // The device attached to the IOAS writes its MSIs to that GPA: the doorbell page is mapped there.
    const hwpt = fd.attach(r.devId0, ioas);
    const dev0 = r.system.device('dev0');
    const doorbell = r.system.requireMsi().doorbellFor({ name: dev0.name, deviceId: dev0.streamId });
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: PAGE, doorbellPage: doorbell.page, users: 1 }]);
  });
});

/** The fake MSI controller's doorbell page (every device's), and the domain a device is attached to. */
function msiSetup() {
  const { system } = r;
  const dev0 = system.device('dev0');
  const doorbell = system.requireMsi().doorbellFor({ name: dev0.name, deviceId: dev0.streamId }).page;
  const domainOf = (device: string) => asFakeDomain(system.iommuCore.domainAt(system.device(device)));
  return { doorbell, domainOf };
}

describe('SW MSI (deviceSetupSwMsi)', () => {
  it('doorbell pages take the window’s slots in the order first set up; the address keeps the offset in the page', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const other = (doorbell + 0x1_0000n) as Hpa;
    expect(fd.deviceSetupSwMsi(r.devId0, (doorbell + 0x40n) as Hpa)).toBe(FAKE_SW_MSI.start + 0x40n);
    expect(fd.deviceSetupSwMsi(r.devId1, (other + 0x48n) as Hpa)).toBe(FAKE_SW_MSI.start + 0x1048n);
    expect(fd.deviceSetupSwMsi(r.devId1, (doorbell + 0x48n) as Hpa)).toBe(FAKE_SW_MSI.start + 0x48n);
    expect(fd.deviceSetupSwMsi(r.devId0, other)).toBe(FAKE_SW_MSI.start + 0x1000n);
    // A page seen again keeps its slot and takes no new one: the next new page gets slot 2.
    expect(fd.deviceSetupSwMsi(r.devId0, (doorbell + 0x2_0000n) as Hpa)).toBe(FAKE_SW_MSI.start + 0x2000n);
  });

  it('the mapping goes into the device’s domain, also one it attaches to later, and leaves with the last device using it', () => {
    const { fd, memory } = r;
    const { doorbell, domainOf } = msiSetup();
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory, length: 0x1000n, iova: 0x10_0000n, ...RW });
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, hwpt);
    fd.deviceSetupSwMsi(r.devId0, doorbell);
    fd.deviceSetupSwMsi(r.devId1, doorbell); // dev1 is not attached yet: recorded only
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: FAKE_SW_MSI.start, doorbellPage: doorbell, users: 1 }]);
    expect(fd.attach(r.devId1, hwpt)).toBe(hwpt);
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: FAKE_SW_MSI.start, doorbellPage: doorbell, users: 2 }]);
    const domain = domainOf('dev0');
    expect(domain.iovaToPhys(iova(FAKE_SW_MSI.start + 0x40n))).toBe(doorbell + 0x40n);
    // Devices only write doorbells (Linux iommu_dma_get_msi_page maps them IOMMU_WRITE).
    expect(domain.mappings.get(FAKE_SW_MSI.start)?.prot).toEqual({ read: false, write: true });
    fd.detach(r.devId0);
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: FAKE_SW_MSI.start, doorbellPage: doorbell, users: 1 }]);
    expect(domain.iovaToPhys(iova(FAKE_SW_MSI.start))).toBe(doorbell);
    fd.detach(r.devId1);
    expect(fd.msiPages(hwpt)).toEqual([]);
    expect(domain.iovaToPhys(iova(FAKE_SW_MSI.start))).toBeUndefined();
    // The IOAS's own mapping stays.
    expect(domain.iovaToPhys(iova(0x10_0000n))).toBe(r.buffer);
  });

  it.each([
    ['a window ending past 2^64 − 1', 'EOVERFLOW', U64_MAX - 0xfffn, 0x2000n],
    ['an unaligned start', 'EINVAL', 0x100_0800n, 0x1_0000n],
    ['an unaligned length', 'EINVAL', 0x100_0000n, 0x1800n],
    ['an empty window', 'EINVAL', 0x100_0000n, 0n],
  ])('IOMMU_OPTION_SW_MSI_START/SIZE: %s is %s', (_, code, start, length) => {
    expect(errnoOf(() => r.fd.setSwMsiWindow(start, length))).toBe(code);
  });

  it('IOMMU_OPTION_SW_MSI_START/SIZE moves the window (up to the last page) until a doorbell is mapped, then EBUSY', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    fd.setSwMsiWindow(U64_MAX - 0xfffn, 0x1000n);
    fd.setSwMsiWindow(0x100_0000n, 0x1_0000n);
    expect(fd.deviceSetupSwMsi(r.devId0, doorbell)).toBe(0x100_0000n);
    expect(errnoOf(() => fd.setSwMsiWindow(0x200_0000n, 0x1_0000n))).toBe('EBUSY');
  });
});

describe('MSI passthrough and SW MSI in one domain', () => {
  it('a passthrough doorbell goes only into domains of its IOAS; the device takes it along when it moves there', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const a = fd.ioasAlloc();
    const b = fd.ioasAlloc();
    const onB = fd.hwptAlloc({ devId: r.devId0, ptId: b });
    fd.attach(r.devId0, onB);
    fd.ioasMapMsi(a, r.devId0, 0x10_0000n);
    fd.ioasMapMsi(a, r.devId0, 0x10_0000n); // the same mapping again: nothing changes
    expect(fd.msiPages(onB)).toEqual([]);
    const onA = fd.replace(r.devId0, a);
    expect(fd.msiPages(onA)).toEqual([{ iovaPage: 0x10_0000n, doorbellPage: doorbell, users: 1 }]);
    // Back on B: B's domain does not get A's page, and A's domain loses it.
    expect(fd.replace(r.devId0, onB)).toBe(onB);
    expect(fd.msiPages(onB)).toEqual([]);
  });

  it('one device may have its doorbell page at two GPAs', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, hwpt);
    fd.ioasMapMsi(ioas, r.devId0, 0x10_0000n);
    fd.ioasMapMsi(ioas, r.devId0, 0x20_0000n);
    expect(fd.msiPages(hwpt)).toEqual([
      { iovaPage: 0x10_0000n, doorbellPage: doorbell, users: 1 },
      { iovaPage: 0x20_0000n, doorbellPage: doorbell, users: 1 },
    ]);
  });

  it('attaching a device whose second page clashes is EEXIST and undoes the first page it installed', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, hwpt);
    const other = (doorbell + 0x1_0000n) as Hpa;
    fd.deviceSetupSwMsi(r.devId0, other); // SW MSI slot 0 of hwpt holds `other`
    // dev1 is not attached yet: its pages are only recorded.
    fd.ioasMapMsi(ioas, r.devId1, 0x10_0000n);
    fd.ioasMapMsi(ioas, r.devId1, FAKE_SW_MSI.start);
    expect(errnoOf(() => fd.attach(r.devId1, hwpt))).toBe('EEXIST');
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: FAKE_SW_MSI.start, doorbellPage: other, users: 1 }]);
  });

  it('a page leaves a domain with its last user while the domain keeps its other pages', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, hwpt);
    fd.attach(r.devId1, hwpt);
    fd.deviceSetupSwMsi(r.devId0, doorbell);
    fd.deviceSetupSwMsi(r.devId1, doorbell);
    fd.deviceSetupSwMsi(r.devId0, (doorbell + 0x1_0000n) as Hpa);
    fd.detach(r.devId0);
    expect(fd.msiPages(hwpt)).toEqual([{ iovaPage: FAKE_SW_MSI.start, doorbellPage: doorbell, users: 1 }]);
  });

  it('a device with another doorbell page at the GPA is EEXIST and the GPA is not left reserved', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const ioas = fd.ioasAlloc();
    // dev0's SW MSI slot 0 holds another page; a passthrough GPA at that slot clashes with it.
    fd.deviceSetupSwMsi(r.devId0, (doorbell + 0x1_0000n) as Hpa);
    expect(errnoOf(() => fd.ioasMapMsi(ioas, r.devId0, FAKE_SW_MSI.start))).toBe('EEXIST');
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('a domain holding another device’s different doorbell page at the GPA is EEXIST and the GPA is not left reserved', () => {
    const { fd } = r;
    const { doorbell } = msiSetup();
    const ioas = fd.ioasAlloc();
    const hwpt = fd.attach(r.devId0, ioas);
    fd.attach(r.devId1, hwpt);
    fd.deviceSetupSwMsi(r.devId0, (doorbell + 0x1_0000n) as Hpa);
    const before = fd.ioasIovaRanges(ioas).ranges;
    expect(errnoOf(() => fd.ioasMapMsi(ioas, r.devId1, FAKE_SW_MSI.start))).toBe('EEXIST');
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(before);
    expect(fd.msiPages(hwpt)).toEqual([
      { iovaPage: FAKE_SW_MSI.start, doorbellPage: doorbell + 0x1_0000n, users: 1 },
    ]);
    // At a free GPA it works, and the domain holds both pages.
    fd.ioasMapMsi(ioas, r.devId1, 0x10_0000n);
    expect(fd.msiPages(hwpt)).toHaveLength(2);
  });

  it('an unaligned GPA is EINVAL, one over mapped memory EEXIST', () => {
    const { fd, memory } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory, length: 0x2000n, iova: 0x10_0000n, ...RW });
    expect(errnoOf(() => fd.ioasMapMsi(ioas, r.devId0, 0x20_0800n))).toBe('EINVAL');
    expect(errnoOf(() => fd.ioasMapMsi(ioas, r.devId0, 0x10_1000n))).toBe('EEXIST');
    fd.ioasMapMsi(ioas, r.devId0, 0x10_2000n);
  });
});

describe('a doorbell in a hardware MSI window (x86)', () => {
  /** The driver reserves the fake MSI controller's doorbell page as a hardware MSI window. */
  function hardwareWindow() {
    const { doorbell } = msiSetup();
    const driver = r.system.iommuCore.driverOf(r.system.device('dev0'));
    const reserved = driver.reservedRegions!.bind(driver);
    driver.reservedRegions = (device) => [
      ...reserved(device),
      { start: doorbell, length: PAGE, type: 'msi' },
    ];
    return doorbell;
  }

  it('deviceSetupSwMsi hands the doorbell back untranslated and maps nothing', () => {
    const { fd } = r;
    const doorbell = hardwareWindow();
    const hwpt = fd.attach(r.devId0, fd.ioasAlloc());
    expect(fd.deviceSetupSwMsi(r.devId0, (doorbell + 0x40n) as Hpa)).toBe(doorbell + 0x40n);
    expect(fd.msiPages(hwpt)).toEqual([]);
    // Just past the window: a doorbell like any other.
    expect(fd.deviceSetupSwMsi(r.devId0, (doorbell + PAGE) as Hpa)).toBe(FAKE_SW_MSI.start);
  });

  it('ioasMapMsi is EOPNOTSUPP: no IOAS mapping can stand for a window the IOMMU never translates', () => {
    const { fd } = r;
    hardwareWindow();
    const ioas = fd.ioasAlloc();
    expect(errnoOf(() => fd.ioasMapMsi(ioas, r.devId0, PAGE))).toBe('EOPNOTSUPP');
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
  });
});
