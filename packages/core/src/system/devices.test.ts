import { describe, expect, it } from 'vitest';
import { fakeConfig, fakePlugin } from '../../test/fake-plugin.js';
import { resolveToken } from '../di/container.js';
import { ConfigError } from '../errors/config-error.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuPlugin } from '../plugin/plugin.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { createSystem } from './create-system.js';
import { IDevices } from './devices.js';

/** The fake plugin under a registry of its own, its driver's probeDevice replaced by `probe`. */
function registryProbing(probe: () => void): PluginRegistry {
  const plugin = {
    ...fakePlugin,
    createDriver: (context: Parameters<typeof fakePlugin.createDriver>[0]) => ({
      ...fakePlugin.createDriver(context),
      probeDevice: probe,
    }),
  } as IommuPlugin;
  return new PluginRegistry({ fake: async () => ({ default: plugin }) });
}

describe('Devices', () => {
  it('builds each device with its ATS and PRI capabilities, behind its IOMMU or on the bus', async () => {
    const raw = fakeConfig();
    raw.devices = [
      {
        name: 'nic0',
        rid: '00:02.0',
        iommu: 'iommu0',
        pasidBits: 8,
        ats: { atcEntries: 16 },
        pri: { maxOutstanding: 4 },
      },
      { name: 'plain', rid: '00:03.0', iommu: 'iommu0' },
      { name: 'legacy', rid: '00:04.0' },
    ];
    const system = await createSystem(raw, { registry: registryProbing(() => {}) });
    const nic = system.device('nic0');
    expect(nic.atc?.capacity).toBe(16);
    expect(nic.pri?.maxOutstanding).toBe(4);
    expect(system.device('plain').atc).toBeUndefined();
    expect(system.device('plain').pri).toBeUndefined();
    expect(system.device('legacy').behindIommu).toBeUndefined();
    expect(system.device('plain').behindIommu).toBe('iommu0');
    expect(system.devices.map((d) => d.name)).toEqual(['nic0', 'plain', 'legacy']);
    expect(() => system.device('nic9')).toThrow(IommufdError);
    expect(() => system.device('nic9')).toThrow('no device named "nic9"');
    const devices = resolveToken(system.container, IDevices);
    expect(devices.get('nic0')).toBe(nic);
    expect(devices.get('nic9')).toBeUndefined();
    const missing = (() => {
      try {
        devices.require('nic9');
      } catch (error) {
        return error as IommufdError;
      }
    })();
    expect(missing?.context).toEqual({ device: 'nic9' });
    await system.dispose();
  });

  it('turns a driver refusing a device into a config error at devices[i], without the errno prefix', async () => {
    const refuse = () => {
      throw new IommufdError('EINVAL', 'stream ID 0x10 is beyond SIDSIZE');
    };
    const error = await createSystem(fakeConfig(), { registry: registryProbing(refuse) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      { path: 'devices[0]', message: 'stream ID 0x10 is beyond SIDSIZE' },
    ]);
    expect((error as ConfigError).cause).toBeInstanceOf(IommufdError);
  });

  it('lets any other failure of the probe through as it is', async () => {
    const bug = new TypeError('driver bug');
    const error = await createSystem(fakeConfig(), {
      registry: registryProbing(() => {
        throw bug;
      }),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBe(bug);
  });
});

describe('Devices and the IOMMU core', () => {
  it('register each device with whether its PASID table is the user’s, as the plugin says', async () => {
    for (const owner of ['user', 'kernel'] as const) {
      const plugin = { ...fakePlugin, capabilities: { ...fakePlugin.capabilities, pasidTableOwner: owner } };
      const registry = new PluginRegistry({ fake: async () => ({ default: plugin as IommuPlugin }) });
      const system = await createSystem(fakeConfig(), { registry });
      const nic = system.device('nic0');
      const nested = { ...system.iommu('iommu0').driver.blockedDomain, id: 99, type: 'nested' as const };
      const seen: number[] = [];
      system.iommuCore.setIopfHandler(nested, (_, r) => seen.push(r.pasid));
      system.iommuCore.attachDevice(nic, nested);
      system.iommuCore.reportPageRequest(nic, {
        pasid: 3,
        iova: 0x1000n,
        access: 1,
        groupIndex: 0,
        last: true,
      });
      expect(seen, owner).toEqual(owner === 'user' ? [3] : []);
      await system.dispose();
    }
  });
});
