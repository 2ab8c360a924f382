/**
 * What one AMD IOMMU implements: the instance options resolved into the features the capability registers
 * advertise (AMD I/O Virtualization Technology (IOMMU) Specification, pub. 48882 rev 3.x, §3.4 "IOMMU MMIO
 * Registers": the Extended Feature Register at 0030h and the Extended Feature 2 Register at 01A0h; §3.2
 * "IOMMU PCI Configuration Registers": the capability header), plus the model's own parameters, the
 * device-table limit and the cache geometries. Everything that differs between two implementations is
 * here, so the model, its capability registers and its checks cannot disagree.
 */
import type { ReplacementPolicy } from '@iommukit/core';

/** Host (v1) page-table depths by EFR.HATS: 0 = 4, 1 = 5, 2 = 6 levels (3 is reserved). */
export const HOST_LEVELS = [4, 5, 6] as const;
export type HostLevels = (typeof HOST_LEVELS)[number];

/** Guest (v2, x86-64 format) page-table depths by EFR.GATS: 0 = 4, 1 = 5 levels (2 and 3 reserved). */
export const GUEST_LEVELS = [4, 5] as const;
export type GuestLevels = (typeof GUEST_LEVELS)[number];

/** GCR3 table depths by EFR.GLXSup: 0 = 1, 1 = 2, 2 = 3 levels (each level indexes 9 PASID bits). */
export const GCR3_LEVELS = [1, 2, 3] as const;
export type Gcr3Levels = (typeof GCR3_LEVELS)[number];

/** Interrupt-remapping table sizes per device by EFR2.NumIntRemapSup: 0 = 512, 1 = 2048 entries. */
export const INTERRUPT_REMAP_ENTRIES = [512, 2048] as const;
export type InterruptRemapEntries = (typeof INTERRUPT_REMAP_ENTRIES)[number];

/** One cache of the model: `entries` slots in sets of `ways`. */
export interface CacheSize {
  readonly entries: number;
  readonly ways: number;
}

export interface AmdFeatures {
  // --- EFR (MMIO 0030h) ---
  /** PPRSup: peripheral page requests (PCIe PRI) and the PPR log. */
  readonly pageRequests: boolean;
  /** XTSup: x2APIC (32-bit) interrupt destinations and the XT interrupt control registers. */
  readonly x2apic: boolean;
  /** NXSup: no-execute and privilege-level protection in requests. */
  readonly noExecute: boolean;
  /** GTSup: guest translation — GCR3 tables and guest (v2) page tables, by PASID. */
  readonly guestTranslation: boolean;
  /** IASup: the INVALIDATE_IOMMU_ALL command. */
  readonly invalidateAll: boolean;
  /** GASup: guest virtual APIC, i.e. the 128-bit IRTE format. */
  readonly guestVirtualApic: boolean;
  /** GAMSup = 1: virtual-APIC (posted) interrupt mode besides legacy remapping, and the GA log. */
  readonly guestVapicMode: boolean;
  /** HESup: the hardware error registers (MMIO 0040h–0050h). */
  readonly hardwareErrors: boolean;
  /** HATS: the deepest host (v1) page table, which bounds DTE.Mode. */
  readonly hostLevels: HostLevels;
  /** GATS: the deepest guest page table (DTE.GuestPagingMode); 4 without guest translation. */
  readonly guestLevels: GuestLevels;
  /** GLXSup: the deepest GCR3 table (DTE.GLX); 1 without guest translation. */
  readonly gcr3Levels: Gcr3Levels;
  /** PASmax + 1: PASID width in bits; 0 without guest translation (PASmax reads 0). */
  readonly pasidBits: number;
  /** MsiCapMmioSup: the MSI capability registers are mirrored in MMIO (0158h–0164h). */
  readonly msiCapMmio: boolean;
  /** GIoSup: guest I/O protection (DTE.GIoV), the guest table for DMA without a PASID. */
  readonly guestIoProtection: boolean;
  /** HASup / HDSup: host page-table accessed and dirty updates (DTE.HAD, Control.HADUpdate). */
  readonly hostAccess: boolean;
  readonly hostDirty: boolean;
  /** EPHSup: enhanced PPR handling (Control.EPHEn, DTE.GPRP). */
  readonly enhancedPpr: boolean;

  // --- EFR2 (MMIO 01A0h) ---
  /** GCR3TRPMode: the DTE's GCR3 table root pointer may be a guest physical address (Control bit 58). */
  readonly gcr3TrpMode: boolean;
  /** NumIntRemapSup: the largest interrupt-remapping table per device (Control.NumIntRemapMode). */
  readonly interruptRemapEntries: InterruptRemapEntries;

  // --- PCI capability header ---
  /** NpCache: not-present entries may be cached, so every change needs an invalidation (VT-d CAP.CM). */
  readonly npCache: boolean;
  /** IotlbSup: remote IOTLBs (PCIe ATS) and the INVALIDATE_IOTLB_PAGES command. */
  readonly iotlbSupport: boolean;

  // --- The model's parameters, not registers ---
  /** The most device-table entries the unit reads (DevTblBase.Size allows up to 65536). */
  readonly maxDeviceTableEntries: number;
  /** Cache geometries: device-table entries, translations, page-directory entries, IRTEs. */
  readonly caches: {
    readonly deviceTable: CacheSize;
    readonly iotlb: CacheSize;
    /** Zero entries models no page-directory cache. */
    readonly pageDirectory: CacheSize;
    readonly interruptRemapping: CacheSize;
    readonly replacement: ReplacementPolicy;
  };
}
