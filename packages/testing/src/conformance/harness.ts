/**
 * The system every conformance case runs on: one IOMMU instance of the plugin under test, 256 MiB of
 * RAM, and two endpoints behind it — `dev0` with PASID (8 bits), ATS and PRI, `dev1` with none — bound
 * to a fresh iommufd context, plus a 1 MiB host buffer to map.
 */
import {
  createSystem,
  type EndpointDevice,
  type Hpa,
  hostMemory,
  type IommuFd,
  type IommuPlugin,
  PluginRegistry,
  type System,
  type UserMemory,
} from '@iommukit/core';
import type { ConformanceOptions } from './options.js';

export const BUFFER_BYTES = 1n << 20n;

export interface Harness {
  readonly system: System;
  readonly fd: IommuFd;
  readonly dev0: EndpointDevice;
  readonly dev1: EndpointDevice;
  readonly devId0: number;
  readonly devId1: number;
  /** A zeroed, physically contiguous host buffer of BUFFER_BYTES. */
  readonly buffer: Hpa;
  /** `length` bytes of the buffer from `offset`, as user memory to map. */
  memory(offset?: bigint, length?: bigint): UserMemory;
  /** Reads host memory (what a DMA wrote). */
  read(hpa: bigint, length: number): Uint8Array;
  /** Lets drivers drain their queues (fault log, event queue, page requests). */
  service(): void;
  dispose(): Promise<void>;
}

export async function createHarness(plugin: IommuPlugin, options: ConformanceOptions): Promise<Harness> {
  const registry = new PluginRegistry({ [plugin.meta.name]: async () => ({ default: plugin }) });
  const msi = options.msi;
  if (msi) registry.registerMsiModule(msi.module.name, async () => ({ default: msi.module }));
  const system = await createSystem(
    {
      name: 'conformance',
      plugin: plugin.meta.name,
      memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '256MiB' }] },
      iommus: [{ name: 'iommu0', base: '0x0900_0000', options: options.instanceOptions ?? {} }],
      devices: [
        {
          name: 'dev0',
          rid: '00:02.0',
          iommu: 'iommu0',
          pasidBits: 8,
          ats: { atcEntries: 32 },
          pri: { maxOutstanding: 8 },
        },
        { name: 'dev1', rid: '00:03.0', iommu: 'iommu0' },
      ],
      ...(msi ? { msi: { controller: msi.module.name, options: msi.options ?? {} } } : {}),
    },
    { registry },
  );
  const fd = system.openIommufd();
  const dev0 = system.device('dev0');
  const dev1 = system.device('dev1');
  const buffer = system.memory.allocBytes(Number(BUFFER_BYTES), 2 * 1024 * 1024);
  const counter = system.bus.counter('conformance');
  return {
    system,
    fd,
    dev0,
    dev1,
    devId0: fd.bind(dev0),
    devId1: fd.bind(dev1),
    buffer,
    memory: (offset = 0n, length = BUFFER_BYTES - offset) => hostMemory(buffer + offset, length),
    read(hpa, length) {
      const r = system.bus.readBytes(hpa, length, counter);
      if (!r.ok) throw new Error(`bus abort reading ${hpa.toString(16)}`);
      return r.data;
    },
    service: () => {
      system.serviceInterrupts();
    },
    dispose: async () => {
      fd.close();
      await system.dispose();
    },
  };
}
