/**
 * iommufd's own MSI doorbell mappings on the mock: the SW MSI cookie for bound devices
 * (`deviceSetupSwMsi`, `setSwMsiWindow`) and MSI passthrough (`ioasMapMsi`), including the EEXIST rule
 * and how mappings follow a device between domains. Each device's "doorbell" is a RAM page here, so a
 * write that reaches it is visible.
 */
import { errnoOf, hostMemory, hpa, type IommuDeviceRef, IommuFd, type System } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { MOCK_SW_MSI_BASE } from '../src/index.js';
import { mockSystemsPerTest } from './fixtures.js';

const newSystem = mockSystemsPerTest();
const PAGE = 0x1000n;
const VITS_PAGE = 0x0809_0000n;

async function setup() {
  const system = await newSystem();
  const doorbells = new Map<string, bigint>([
    ['nic0', system.memory.allocFrames(1)],
    ['nvme0', system.memory.allocFrames(1)],
  ]);
  const fd = new IommuFd(system.iommuCore, system.tracer, new Set(), (device: IommuDeviceRef) => {
    const page = hpa(doorbells.get(device.name)!);
    return { name: `${device.name}-doorbell`, address: hpa(page + 0x40n), page };
  });
  const nic0 = fd.bind(system.device('nic0'));
  const nvme0 = fd.bind(system.device('nvme0'));
  const ioas = fd.ioasAlloc();
  return { system, fd, nic0, nvme0, ioas, doorbells };
}

const word = (system: System, addr: bigint) => {
  const r = system.bus.read(addr, 4, system.bus.counter('test'));
  return r.ok ? Number(r.value) : undefined;
};

describe('SW MSI (iommufd_sw_msi)', () => {
  it('maps the doorbell page in the SW MSI window of the attached domain; the MSI write reaches it', async () => {
    const { system, fd, nic0, ioas, doorbells } = await setup();
    const hwpt = fd.attach(nic0, ioas);
    const address = fd.deviceSetupSwMsi(nic0, hpa(doorbells.get('nic0')! + 0x40n));
    expect(address).toBe(MOCK_SW_MSI_BASE + 0x40n);
    expect(fd.msiPages(hwpt)).toEqual([
      { iovaPage: MOCK_SW_MSI_BASE, doorbellPage: doorbells.get('nic0'), users: 1 },
    ]);
    expect(system.device('nic0').msiWrite(address, 0x1234)).toMatchObject({ ok: true });
    expect(word(system, doorbells.get('nic0')! + 0x40n)).toBe(0x1234);
  });

  it('one IOVA per doorbell page for the whole context; a device set up before attach gets it on attach', async () => {
    const { fd, nic0, nvme0, ioas, doorbells } = await setup();
    const a = fd.deviceSetupSwMsi(nic0, hpa(doorbells.get('nic0')!));
    const b = fd.deviceSetupSwMsi(nvme0, hpa(doorbells.get('nvme0')!));
    const again = fd.deviceSetupSwMsi(nvme0, hpa(doorbells.get('nic0')!));
    expect([a, b, again]).toEqual([MOCK_SW_MSI_BASE, MOCK_SW_MSI_BASE + PAGE, MOCK_SW_MSI_BASE]);
    const hwpt = fd.attach(nic0, ioas);
    expect(fd.msiPages(hwpt)).toEqual([
      { iovaPage: MOCK_SW_MSI_BASE, doorbellPage: doorbells.get('nic0'), users: 1 },
    ]);
    expect(fd.attach(nvme0, ioas)).toBe(hwpt);
    expect(fd.msiPages(hwpt).map((p) => [p.iovaPage, p.users])).toEqual([
      [MOCK_SW_MSI_BASE, 2],
      [MOCK_SW_MSI_BASE + PAGE, 1],
    ]);
  });

  it('follows the device on replace and leaves the old domain when its last user goes', async () => {
    const { system, fd, nic0, nvme0, ioas, doorbells } = await setup();
    const first = fd.attach(nic0, ioas);
    fd.attach(nvme0, ioas); // keeps the auto HWPT alive after nic0 leaves it
    const address = fd.deviceSetupSwMsi(nic0, hpa(doorbells.get('nic0')!));
    const second = fd.hwptAlloc({ devId: nic0, ptId: ioas });
    fd.replace(nic0, second);
    expect(fd.msiPages(second)).toHaveLength(1);
    expect(fd.msiPages(first)).toEqual([]);
    expect(system.device('nic0').msiWrite(address, 7)).toMatchObject({ ok: true });
    fd.detach(nic0);
    expect(fd.msiPages(second)).toEqual([]);
  });

  it('IOMMU_OPTION_SW_MSI_START/SIZE moves the window; EINVAL unaligned, EBUSY once something is mapped', async () => {
    const { fd, nic0, ioas, doorbells } = await setup();
    expect(errnoOf(() => fd.setSwMsiWindow(0x0c00_0800n, 0x10_0000n))).toBe('EINVAL');
    fd.setSwMsiWindow(0x0c00_0000n, 0x10_0000n);
    fd.attach(nic0, ioas);
    expect(fd.deviceSetupSwMsi(nic0, hpa(doorbells.get('nic0')! + 0x40n))).toBe(0x0c00_0040n);
    expect(errnoOf(() => fd.setSwMsiWindow(0x0d00_0000n, 0x10_0000n))).toBe('EBUSY');
  });
});

describe('MSI passthrough (ioasMapMsi)', () => {
  it("maps the device's doorbell page at the GPA in its domain and keeps IOAS mappings off it", async () => {
    const { system, fd, nic0, ioas, doorbells } = await setup();
    const hwpt = fd.attach(nic0, ioas);
    fd.ioasMapMsi(ioas, nic0, VITS_PAGE);
    expect(fd.msiPages(hwpt)).toEqual([
      { iovaPage: VITS_PAGE, doorbellPage: doorbells.get('nic0'), users: 1 },
    ]);
    expect(system.device('nic0').msiWrite(VITS_PAGE + 0x40n, 9)).toMatchObject({ ok: true });
    expect(word(system, doorbells.get('nic0')! + 0x40n)).toBe(9);
    const memory = hostMemory(system.memory.allocFrames(1), PAGE);
    expect(
      errnoOf(() =>
        fd.ioasMap({ ioasId: ioas, memory, iova: VITS_PAGE, length: PAGE, readable: true, writeable: true }),
      ),
    ).toBe('EINVAL');
  });

  it('EEXIST for a different doorbell page at the GPA in a shared domain; a separate HWPT resolves it', async () => {
    const { fd, nic0, nvme0, ioas, doorbells } = await setup();
    const shared = fd.attach(nic0, ioas);
    expect(fd.attach(nvme0, ioas)).toBe(shared);
    fd.ioasMapMsi(ioas, nic0, VITS_PAGE);
    expect(errnoOf(() => fd.ioasMapMsi(ioas, nvme0, VITS_PAGE))).toBe('EEXIST');
    const own = fd.hwptAlloc({ devId: nvme0, ptId: ioas });
    fd.replace(nvme0, own);
    fd.ioasMapMsi(ioas, nvme0, VITS_PAGE);
    expect(fd.msiPages(shared).map((p) => p.doorbellPage)).toEqual([doorbells.get('nic0')]);
    expect(fd.msiPages(own).map((p) => p.doorbellPage)).toEqual([doorbells.get('nvme0')]);
  });

  it('EINVAL for an unaligned GPA, EEXIST over mapped memory, ENODEV without an MSI controller', async () => {
    const { system, fd, nic0, ioas } = await setup();
    fd.attach(nic0, ioas);
    expect(errnoOf(() => fd.ioasMapMsi(ioas, nic0, VITS_PAGE + 0x40n))).toBe('EINVAL');
    const memory = hostMemory(system.memory.allocFrames(1), PAGE);
    fd.ioasMap({ ioasId: ioas, memory, iova: 0x4000_0000n, length: PAGE, readable: true, writeable: true });
    expect(errnoOf(() => fd.ioasMapMsi(ioas, nic0, 0x4000_0000n))).toBe('EEXIST');
    const bare = system.openIommufd();
    fd.unbind(nic0);
    const dev = bare.bind(system.device('nic0'));
    expect(errnoOf(() => bare.ioasMapMsi(bare.ioasAlloc(), dev, VITS_PAGE))).toBe('ENODEV');
  });
});
