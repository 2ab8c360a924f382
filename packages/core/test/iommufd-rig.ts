/**
 * An iommufd context on the fake iommufd system (test/fake-iommufd-plugin.ts) with both devices bound and
 * a 1 MiB host buffer, for core tests that drive `IommuFd` one concept at a time.
 */

import { hostMemory } from '../src/iommufd/user-memory.js';
import { createSystem } from '../src/system/create-system.js';
import { fakeIommufdConfig, fakeIommufdRegistry } from './fake-iommufd-plugin.js';

export const MiB = 1024n * 1024n;
export const RW = { readable: true, writeable: true } as const;

export async function iommufdRig() {
  const system = await createSystem(fakeIommufdConfig(), { registry: fakeIommufdRegistry() });
  const buffer = system.memory.allocBytes(Number(MiB), Number(MiB));
  const fd = system.openIommufd();
  const devId0 = fd.bind(system.device('dev0'));
  const devId1 = fd.bind(system.device('dev1'));
  return {
    system,
    fd,
    devId0,
    devId1,
    /** The 1 MiB buffer, 1 MiB aligned. */
    buffer,
    memory: hostMemory(buffer, MiB),
    dispose: async () => {
      fd.close();
      await system.dispose();
    },
  };
}

export type IommufdRig = Awaited<ReturnType<typeof iommufdRig>>;
