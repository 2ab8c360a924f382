import { describe, expect, it } from 'vitest';
import { iommufdErrorOf } from '../../test/iommufd-error-of.js';
import { recordingDriver, testDevice } from '../../test/recording-driver.js';
import { hpa } from '../address/address.js';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';
import type { DomainType, IommuDeviceRef, IommuDomain, IommuDriver, ReservedRegion } from './driver.js';
import type { PageRequest, PageResponse } from './hardware.js';
import { IIommuCore, IommuCore } from './iommu-core.js';
import { StaticDomain } from './static-domain.js';
import { NO_PASID } from './translation.js';

let nextId = 1;
const domain = (type: DomainType = 'paging') => ({ id: nextId++, type }) as IommuDomain;

/** A driver that records what the core asks of it; `fail` makes the next attach throw. */
function stubDriver(options: { pasid?: boolean; pageResponse?: boolean } = {}) {
  const log: string[] = [];
  const responses: (PageResponse & { device: string })[] = [];
  const state: { fail: IommufdError | undefined } = { fail: undefined };
  const failIfAsked = () => {
    const error = state.fail;
    state.fail = undefined;
    if (error) throw error;
  };
  const blockedDomain = domain('blocked');
  const driver: IommuDriver = {
    instance: 'stub0',
    probe: () => {},
    probeDevice: () => {},
    releaseDevice: () => {},
    domainAllocPaging: () => domain(),
    blockedDomain,
    attachDev: (d, device) => {
      log.push(`attachDev ${d.id} ${device.name}`);
      failIfAsked();
    },
    hwInfo: () => ({
      type: 'stub',
      data: {},
      maxPasidLog2: 8,
      capabilities: { dirtyTracking: false, pasidExec: false, pasidPriv: false },
    }),
    shutdown: () => {},
  };
  if (options.pasid !== false) {
    driver.setDevPasid = (d, device, pasid) => {
      log.push(`setDevPasid ${d.id} ${device.name} ${pasid}`);
      failIfAsked();
    };
    driver.removeDevPasid = (device, pasid) => log.push(`removeDevPasid ${device.name} ${pasid}`);
  }
  if (options.pageResponse !== false)
    driver.pageResponse = (device, response) => responses.push({ device: device.name, ...response });
  return { driver, log, responses, state, blockedDomain };
}

const device = (name: string) => ({ name, rid: 0, streamId: 0, pasidBits: 8 }) as unknown as IommuDeviceRef;

function setup(options?: { pasid?: boolean; pageResponse?: boolean; userPasidTable?: boolean }) {
  const core = new IommuCore();
  const stub = stubDriver(options);
  const dev = device('dev0');
  if (options?.userPasidTable === undefined) core.addDevice(dev, stub.driver);
  else core.addDevice(dev, stub.driver, { userPasidTable: options.userPasidTable });
  return { core, dev, ...stub };
}

function pri(pasid: number, groupIndex: number, last: boolean): PageRequest {
  return { pasid, iova: 0x1000n, access: 1, groupIndex, last };
}

describe('IommuCore', () => {
  it('probe_device: a device starts on the driver blocked domain with no PASID attached', () => {
    const { core, dev, driver, blockedDomain, log } = setup();
    expect(core.domainAt(dev)).toBe(blockedDomain);
    expect(core.domainAt(dev, NO_PASID)).toBe(blockedDomain);
    expect(core.attachedPasids(dev)).toEqual([]);
    expect(core.driverOf(dev)).toBe(driver);
    expect(log).toEqual([]);
  });

  it('a device not behind an IOMMU is ENODEV', () => {
    const { core } = setup();
    const stranger = device('stranger');
    expect(core.domainAt(stranger)).toBeUndefined();
    expect(core.attachedPasids(stranger)).toEqual([]);
    expect(errnoOf(() => core.driverOf(stranger))).toBe('ENODEV');
    expect(errnoOf(() => core.attachDevice(stranger, domain()))).toBe('ENODEV');
    expect(errnoOf(() => core.attachDevicePasid(stranger, domain(), 1))).toBe('ENODEV');
    expect(errnoOf(() => core.detachDevicePasid(stranger, NO_PASID))).toBe('ENODEV');
    const enodev = { code: 'ENODEV', context: { device: 'stranger' } };
    expect(iommufdErrorOf(() => core.driverOf(stranger))).toMatchObject(enodev);
    expect(
      iommufdErrorOf(() => core.respond(stranger, { pasid: 1, groupIndex: 0, code: 'success' })),
    ).toMatchObject(enodev);
  });

  it('removeDevice forgets the device', () => {
    const { core, dev } = setup();
    core.removeDevice(dev);
    expect(core.domainAt(dev)).toBeUndefined();
    expect(errnoOf(() => core.driverOf(dev))).toBe('ENODEV');
  });

  it('iommu_attach_device / replace: attach_dev is called with the new domain directly, without a detour through blocked', () => {
    const { core, dev, log } = setup();
    const d1 = domain();
    const d2 = domain();
    core.attachDevice(dev, d1);
    core.attachDevice(dev, d2);
    expect(log).toEqual([`attachDev ${d1.id} dev0`, `attachDev ${d2.id} dev0`]);
    expect(core.domainAt(dev)).toBe(d2);
  });

  it.each([
    ['attach_dev at the RID', NO_PASID],
    ['set_dev_pasid at PASID 3', 3],
  ])('a driver error from %s leaves the recorded domain unchanged', (_, pasid) => {
    const { core, dev, state } = setup();
    const old = domain();
    const attach = (d: IommuDomain) =>
      pasid === NO_PASID ? core.attachDevice(dev, d) : core.attachDevicePasid(dev, d, pasid);
    attach(old);
    state.fail = new IommufdError('EINVAL', 'incompatible domain');
    expect(errnoOf(() => attach(domain()))).toBe('EINVAL');
    expect(core.domainAt(dev, pasid)).toBe(old);
  });

  it('a driver error on the first PASID attach leaves the PASID unattached', () => {
    const { core, dev, state } = setup();
    state.fail = new IommufdError('EBUSY', 'busy');
    expect(errnoOf(() => core.attachDevicePasid(dev, domain(), 4))).toBe('EBUSY');
    expect(core.domainAt(dev, 4)).toBeUndefined();
    expect(core.attachedPasids(dev)).toEqual([]);
  });

  it('iommu_attach_device_pasid without set_dev_pasid in the driver is EOPNOTSUPP', () => {
    const { core, dev, log } = setup({ pasid: false });
    expect(errnoOf(() => core.attachDevicePasid(dev, domain(), 1))).toBe('EOPNOTSUPP');
    expect(core.domainAt(dev, 1)).toBeUndefined();
    expect(core.attachedPasids(dev)).toEqual([]);
    expect(log).toEqual([]);
  });

  it('iommu_attach_device_pasid records the domain at the PASID and leaves the RID alone', () => {
    const { core, dev, log, blockedDomain } = setup();
    const d = domain();
    core.attachDevicePasid(dev, d, 5);
    core.attachDevicePasid(dev, d, 9);
    expect(core.domainAt(dev, 5)).toBe(d);
    expect(core.attachedPasids(dev)).toEqual([5, 9]);
    expect(core.domainAt(dev)).toBe(blockedDomain);
    expect(log).toEqual([`setDevPasid ${d.id} dev0 5`, `setDevPasid ${d.id} dev0 9`]);
  });

  it('detaching the RID attaches the blocked domain through attach_dev; PASIDs stay attached', () => {
    const { core, dev, log, blockedDomain } = setup();
    const rid = domain();
    const pasidDomain = domain();
    core.attachDevice(dev, rid);
    core.attachDevicePasid(dev, pasidDomain, 2);
    log.length = 0;
    core.detachDevicePasid(dev, NO_PASID);
    expect(log).toEqual([`attachDev ${blockedDomain.id} dev0`]);
    expect(core.domainAt(dev)).toBe(blockedDomain);
    expect(core.domainAt(dev, 2)).toBe(pasidDomain);
  });

  it('iommu_detach_device_pasid calls remove_dev_pasid and forgets the PASID; an unattached PASID is a silent no-op', () => {
    const { core, dev, log } = setup();
    core.attachDevicePasid(dev, domain(), 2);
    log.length = 0;
    core.detachDevicePasid(dev, 2);
    expect(log).toEqual(['removeDevPasid dev0 2']);
    expect(core.domainAt(dev, 2)).toBeUndefined();
    expect(core.attachedPasids(dev)).toEqual([]);
    core.detachDevicePasid(dev, 2);
    core.detachDevicePasid(dev, 7);
    expect(log).toEqual(['removeDevPasid dev0 2']);
  });

  describe('I/O page faults (iommu_report_device_fault)', () => {
    it('a page request goes to the handler of the domain attached at its PASID', () => {
      const { core, dev, responses } = setup();
      const ridDomain = domain();
      const pasidDomain = domain();
      core.attachDevice(dev, ridDomain);
      core.attachDevicePasid(dev, pasidDomain, 3);
      const seen: string[] = [];
      core.setIopfHandler(ridDomain, (d, r) => seen.push(`rid ${d.name} ${r.pasid} ${r.groupIndex}`));
      core.setIopfHandler(pasidDomain, (d, r) => seen.push(`pasid ${d.name} ${r.pasid} ${r.groupIndex}`));
      core.reportPageRequest(dev, pri(3, 1, false));
      core.reportPageRequest(dev, pri(NO_PASID, 2, true));
      core.reportPageRequest(dev, pri(3, 1, true));
      expect(seen).toEqual([`pasid dev0 3 1`, `rid dev0 ${NO_PASID} 2`, `pasid dev0 3 1`]);
      expect(responses).toEqual([]);
    });

    it('without a handler the group is answered invalid, once, on its LAST request', () => {
      const { core, dev, responses } = setup();
      core.attachDevice(dev, domain());
      core.reportPageRequest(dev, pri(NO_PASID, 6, false));
      core.reportPageRequest(dev, pri(NO_PASID, 6, false));
      expect(responses).toEqual([]);
      core.reportPageRequest(dev, pri(NO_PASID, 6, true));
      expect(responses).toEqual([{ device: 'dev0', pasid: NO_PASID, groupIndex: 6, code: 'invalid' }]);
    });

    it('a page request at a PASID with no domain attached is answered invalid', () => {
      const { core, dev, responses } = setup();
      const d = domain();
      core.attachDevice(dev, d);
      core.setIopfHandler(d, () => {
        throw new Error('the RID handler must not see PASID requests');
      });
      core.reportPageRequest(dev, pri(4, 1, true));
      expect(responses).toEqual([{ device: 'dev0', pasid: 4, groupIndex: 1, code: 'invalid' }]);
    });

    it('with a user-owned PASID table, a request at an unattached PASID goes to the nested domain at the RID', () => {
      for (const userPasidTable of [true, false]) {
        const { core, dev, responses } = setup({ userPasidTable });
        const nested = domain('nested');
        const seen: number[] = [];
        core.setIopfHandler(nested, (_, r) => seen.push(r.pasid));
        core.attachDevice(dev, nested);
        core.reportPageRequest(dev, pri(4, 1, true));
        expect([seen, responses.map((r) => r.code)], `userPasidTable ${userPasidTable}`).toEqual(
          userPasidTable ? [[4], []] : [[], ['invalid']],
        );
      }
    });

    it('the RID fallback needs a nested domain there, and a PASID that has its own domain keeps it', () => {
      const { core, dev, responses } = setup({ userPasidTable: true });
      const paging = domain();
      const atPasid = domain();
      const seen: string[] = [];
      core.setIopfHandler(paging, () => seen.push('rid'));
      core.setIopfHandler(atPasid, () => seen.push('pasid'));
      core.attachDevice(dev, paging);
      core.attachDevicePasid(dev, atPasid, 5);
      core.reportPageRequest(dev, pri(4, 1, true));
      core.reportPageRequest(dev, pri(5, 2, true));
      expect(seen).toEqual(['pasid']);
      expect(responses.map((r) => [r.pasid, r.code])).toEqual([[4, 'invalid']]);
    });

    it('the handler belongs to the domain: after a replace, or once cleared, requests are answered invalid', () => {
      const { core, dev, responses } = setup();
      const withHandler = domain();
      const without = domain();
      const seen: number[] = [];
      core.setIopfHandler(withHandler, (_, r) => seen.push(r.groupIndex));
      core.attachDevice(dev, withHandler);
      core.reportPageRequest(dev, pri(NO_PASID, 1, true));
      core.attachDevice(dev, without);
      core.reportPageRequest(dev, pri(NO_PASID, 2, true));
      core.attachDevice(dev, withHandler);
      core.setIopfHandler(withHandler, undefined);
      core.reportPageRequest(dev, pri(NO_PASID, 3, true));
      expect(seen).toEqual([1]);
      expect(responses.map((r) => [r.groupIndex, r.code])).toEqual([
        [2, 'invalid'],
        [3, 'invalid'],
      ]);
    });

    it('one domain, several devices: the handler is told which device asked', () => {
      const { core, dev, driver } = setup();
      const dev1 = device('dev1');
      core.addDevice(dev1, driver);
      const shared = domain();
      core.attachDevice(dev, shared);
      core.attachDevice(dev1, shared);
      const seen: string[] = [];
      core.setIopfHandler(shared, (d) => seen.push(d.name));
      core.reportPageRequest(dev1, pri(NO_PASID, 1, true));
      core.reportPageRequest(dev, pri(NO_PASID, 1, true));
      expect(seen).toEqual(['dev1', 'dev0']);
    });

    it('iopf_group_response: respond goes through the device driver page_response', () => {
      const { core, dev, responses } = setup();
      core.respond(dev, { pasid: 2, groupIndex: 3, code: 'success' });
      expect(responses).toEqual([{ device: 'dev0', pasid: 2, groupIndex: 3, code: 'success' }]);
    });

    it('a driver without page_response ignores responses', () => {
      const { core, dev } = setup({ pageResponse: false });
      expect(errnoOf(() => core.respond(dev, { pasid: 2, groupIndex: 3, code: 'success' }))).toBeUndefined();
      expect(errnoOf(() => core.reportPageRequest(dev, pri(NO_PASID, 1, true)))).toBeUndefined();
    });
  });
});

describe('page requests from devices the core does not know', () => {
  it('are dropped, not thrown back into the driver’s interrupt handler', () => {
    const core = new IommuCore();
    const stranger = { name: 'gone', rid: 1, streamId: 1, pasidBits: 0, pci: {} as never };
    expect(() =>
      core.reportPageRequest(stranger, { pasid: -1, iova: 0x1000n, access: 1, groupIndex: 0, last: true }),
    ).not.toThrow();
  });
});

describe('iommu_dma_prepare_msi', () => {
  const SW_MSI: ReservedRegion = { start: 0x800_0000n, length: 0x10_0000n, type: 'sw-msi' };
  const DOORBELL = hpa(0x2f02_0040n);

  function msiSetup(reserved: readonly ReservedRegion[] = [SW_MSI]) {
    const core = new IommuCore();
    const rec = recordingDriver({ reserved: [...reserved] });
    const dev = testDevice('dev0');
    core.addDevice(dev, rec.driver);
    return { core, dev, ...rec };
  }

  it('a device without an IOMMU writes its MSIs to the doorbell itself', () => {
    expect(new IommuCore().prepareMsi(testDevice('plain'), DOORBELL)).toBe(DOORBELL);
  });

  it('a blocked device cannot get MSIs: EINVAL', () => {
    const { core, dev, log } = msiSetup();
    expect(errnoOf(() => core.prepareMsi(dev, DOORBELL))).toBe('EINVAL');
    expect(log).toEqual([]);
  });

  it('an identity domain passes the doorbell address through', () => {
    const { core, dev } = msiSetup();
    core.attachDevice(dev, new StaticDomain(1, 'identity'));
    expect(core.prepareMsi(dev, DOORBELL)).toBe(DOORBELL);
  });

  it('a paging domain without a SW MSI window (a hardware MSI window) uses the doorbell address', () => {
    const { core, dev, driver, log } = msiSetup([{ ...SW_MSI, type: 'msi' }]);
    core.attachDevice(dev, driver.domainAllocPaging());
    expect(core.prepareMsi(dev, DOORBELL)).toBe(DOORBELL);
    expect(log).toEqual(['attach dev0 d1']);
  });

  it('a doorbell in a hardware MSI window is used as it is, even where a SW MSI window exists (x86 interrupt window)', () => {
    const window: ReservedRegion = { start: 0xfee0_0000n, length: 0x10_0000n, type: 'msi' };
    const { core, dev, driver, log } = msiSetup([SW_MSI, window]);
    core.attachDevice(dev, driver.domainAllocPaging());
    expect(core.prepareMsi(dev, hpa(0xfee0_0010n))).toBe(0xfee0_0010n);
    expect(core.prepareMsi(dev, hpa(0xfeef_fff0n))).toBe(0xfeef_fff0n);
    // Just past the window: a doorbell like any other, mapped into the SW MSI window.
    expect(core.prepareMsi(dev, hpa(0xfef0_0000n))).toBe(0x800_0000n);
    expect(log.filter((l) => l.startsWith('map'))).toEqual(['map d1 0x8000000 -> 0xfef00000 +0x1000 -w']);
  });

  it('a paging domain maps the doorbell page into the SW MSI window; devices sharing the domain share the cookie', () => {
    const { core, dev, driver, log } = msiSetup();
    const other = testDevice('dev1');
    core.addDevice(other, driver);
    const shared = driver.domainAllocPaging();
    core.attachDevice(dev, shared);
    core.attachDevice(other, shared);
    expect(core.prepareMsi(dev, DOORBELL)).toBe(0x800_0040n);
    expect(core.prepareMsi(other, hpa(0x2f02_0044n))).toBe(0x800_0044n);
    expect(core.msiCookie(shared, SW_MSI).window).toBe(SW_MSI);
    // Another domain has its own cookie: its first doorbell page is the window's first page too.
    const own = driver.domainAllocPaging();
    core.attachDevice(other, own);
    expect(core.prepareMsi(other, hpa(0x3f00_0000n))).toBe(0x800_0000n);
    expect(log.filter((l) => l.startsWith('map'))).toEqual([
      'map d1 0x8000000 -> 0x2f020000 +0x1000 -w',
      'map d2 0x8000000 -> 0x3f000000 +0x1000 -w',
    ]);
  });
});

describe('IommuCore odds and ends', () => {
  it('detaching a PASID on a driver without remove_dev_pasid just forgets it', () => {
    const { core, dev, driver, log } = setup();
    core.attachDevicePasid(dev, domain(), 2);
    delete driver.removeDevPasid;
    core.detachDevicePasid(dev, 2);
    expect(core.attachedPasids(dev)).toEqual([]);
    expect(log).toHaveLength(1);
  });

  it('prepareMsi on a blocked device names the device in its EINVAL', () => {
    const { core, dev } = setup();
    expect(iommufdErrorOf(() => core.prepareMsi(dev, hpa(0x2f00_0040n)))).toMatchObject({
      code: 'EINVAL',
      context: { device: 'dev0' },
    });
  });

  it('its DI token is the global symbol iommukit.IommuCore (every copy of the core shares it)', () => {
    expect(IIommuCore).toBe(Symbol.for('iommukit.IommuCore'));
  });
});
