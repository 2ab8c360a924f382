/**
 * A VM's guest-physical address space: its own bus, with guest RAM at a GPA range backed by a contiguous
 * block of host RAM (an alias of the host's pages, so a device's DMA to the HPA and the guest's access to
 * the GPA touch the same bytes), plus whatever MMIO the VMM places there (a vIOMMU's register window).
 * The host block is aligned to 2 MiB so the VM's stage 2 can use block mappings.
 */
import {
  FrameAllocator,
  type Hpa,
  hostMemory,
  hpa,
  type IFrameAllocator,
  IommufdError,
  MemoryBus,
  PAGE_SIZE,
  toHex,
  type UserMemory,
} from '@iommukit/core';

/** Where guest RAM starts in the guest-physical space (QEMU's `virt` machine puts it here too). */
export const GUEST_RAM_BASE = 0x4000_0000;
/** Host frames per 2 MiB: the alignment of the host block behind guest RAM. */
const FRAMES_2M = 512;

export class GuestMemory {
  /** The guest-physical bus: guest RAM and the VM's MMIO regions. */
  readonly bus = new MemoryBus();
  readonly gpaBase = GUEST_RAM_BASE;
  readonly size: number;
  /** Host physical address of GPA `gpaBase`. */
  readonly hostBase: Hpa;
  /** The guest OS's page allocator over guest RAM. */
  readonly allocator: IFrameAllocator;
  private readonly frames: number;
  private released = false;

  constructor(
    readonly vm: string,
    private readonly host: { readonly bus: MemoryBus; readonly memory: IFrameAllocator },
    size: number,
  ) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % (FRAMES_2M * PAGE_SIZE) !== 0) {
      throw new IommufdError(
        'EINVAL',
        `${vm}: guest RAM of ${toHex(size)} bytes is not a whole number of 2 MiB`,
      );
    }
    this.size = size;
    this.frames = size / PAGE_SIZE;
    this.hostBase = host.memory.allocFrames(this.frames, FRAMES_2M);
    this.bus.addRamAlias(`${vm}.ram`, this.gpaBase, size, { bus: host.bus, addr: this.hostBase });
    this.allocator = new FrameAllocator([{ base: this.gpaBase, size }], (base, bytes) =>
      this.bus.discardRam(base, bytes),
    );
  }

  get gpaEnd(): number {
    return this.gpaBase + this.size;
  }

  /** The host page behind a GPA, or undefined outside guest RAM. */
  gpaToHpa(gpa: bigint | number): Hpa | undefined {
    const g = Number(gpa);
    if (g < this.gpaBase || g >= this.gpaEnd) return undefined;
    return hpa(BigInt(this.hostBase) + BigInt(g - this.gpaBase));
  }

  /** Guest RAM as iommufd user memory (what the VMM maps GPA → HPA in the VM's IOAS). */
  userMemory(): UserMemory {
    return hostMemory(this.hostBase, BigInt(this.size));
  }

  /** Returns the host block (its bytes are zeroed by the host allocator when reused). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const region of [...this.bus.listRegions()]) this.bus.removeRegion(region.name);
    this.host.memory.freeFrames(this.hostBase, this.frames);
  }
}
