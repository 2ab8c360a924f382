/**
 * Options of one AMD IOMMU (`iommus[].options` in a config): what the unit implements, the model's cache
 * geometries and its device-table limit. Every key has a default, so `{}` describes a Zen 4 EPYC
 * ("Genoa") IOMMU as Linux sees it; `featuresFromOptions` turns a validated result into the
 * {@link AmdFeatures} the capability registers and the checks use.
 *
 * The feature defaults follow the EFR Linux logs on a multi-segment EPYC server, "AMD-Vi: Extended
 * features (0xa5bf732fa2295afe): PPR X2APIC NX GT [5] IA GA PC GA_vAPIC" (openvelinux/kernel pull request
 * #50, 2025). That it is Genoa rests on its upper half, 0xa5bf73, which a Dell PowerEdge R6615 (EPYC
 * 9004, 1006 SEV ASIDs) with SEV-SNP on also logs — "(0xa5bf7320a2294aee, 0x1d)" (permaweb/hb-os
 * README.md) — and on GATS = 5-level (Zen 4 brought 5-level paging) with HASup/HDSup; no log found names
 * the CPU beside the value itself, so this is an inference. Decoded: PPR, XT, NX, GT, IA, GA, GAMSup 1
 * (vAPIC), HATS 6-level, GATS 5-level, GLXSup 2-level, PASmax 15 (16-bit PASIDs), MsiCapMmioSup, GIoSup,
 * HASup, EPHSup, HDSup, no HESup; EFR2 (from the SNP sample) GCR3TRPMode with 512-entry interrupt tables.
 * What the model reports differently, every field of a feature it does not implement (capabilities.ts):
 * PCSup, SmiFSup/SmiFRC, the dual logs, USSup, the PPR early-overflow and auto-response support, BlkStopMrk,
 * PerfOpt, AttrFW, SNPSup, bits 5/31/53/55/56/58/61 of the EFR and TMPM/GAPPIDis/bit 0 of the EFR2.
 * Cache geometries are the model's choice (no public figure for AMD's caches was found; QEMU's IOTLB, a
 * hash table flushed whole at 1024 entries, gives the IOTLB's capacity), and so are the PCI capability's
 * bits: NpCache 0 as on hardware (QEMU sets it, being emulated) and IotlbSup 1.
 *
 * Dependencies (what the spec and Linux drivers/iommu/amd require):
 * - `guestTranslation: false` describes a unit without GCR3 tables: GATS, GLXSup and PASmax are reported 0
 *   whatever their keys say — ignored, not refused, so turning GT off is one key. The IVHD feature field
 *   documents GATS as 0 without GTSup, and the SNP-enabled Genoa sample above (GT off) reports PASmax and
 *   GATS 0; it keeps GLXSup 1, which the model does not imitate. GIoSup and GCR3TRPMode stay as their keys
 *   say: that sample keeps both without GT.
 * - Every other dependency is refused, with the path of the dependent key: x2APIC destinations and the
 *   virtual-APIC mode need GASup (Linux init.c: "XT and GAM require GA mode" — a 32-bit destination only
 *   fits the 128-bit IRTE); with guest translation, the GCR3 table must index every PASID bit, 9 per level
 *   (Linux's setup_gcr3_table refuses a device whose PASID width needs more levels than GLXSup).
 * - Not dependencies: GT does not need PPR (Linux checks each on its own; the SNP sample has PPR without GT;
 *   only Linux's SVA wants GT, GIoSup, PPR and EPHSup together), and HDSup does not need HASup.
 * - PASID widths up to 20 bits are accepted (PASmax is 5 bits), though Linux handles 16 at most: with GT it
 *   BUG()s on a wider PASmax (PASID_MASK).
 */
import { cacheEntriesOption, cacheOptionProblem, cacheWaysOption, flagOption, z } from '@iommukit/core';
import {
  type AmdFeatures,
  GCR3_LEVELS,
  GUEST_LEVELS,
  HOST_LEVELS,
  INTERRUPT_REMAP_ENTRIES,
} from './features.js';

/** PASID bits one GCR3 table level indexes (a 4 KiB table of 512 eight-byte entries). */
export const PASID_BITS_PER_GCR3_LEVEL = 9;

/** Device-table entries per 4 KiB page: DevTblBase.Size counts pages of 128 32-byte entries. */
export const DEVICE_TABLE_ENTRIES_PER_PAGE = 128;

/** The model's caches, each an `<name>Entries` / `<name>Ways` pair of options. */
const CACHES = ['dteCache', 'iotlb', 'pdCache', 'irtCache'] as const;

const gtOnly = ' Reported 0 without guestTranslation.';

export const AmdOptionsSchema = z
  .strictObject({
    pageRequests: flagOption(true, 'Peripheral page requests (PCIe PRI) and the PPR log (EFR.PPRSup).'),
    x2apic: flagOption(
      true,
      'x2APIC interrupt destinations and the XT interrupt control registers (EFR.XTSup); needs guestVirtualApic.',
    ),
    noExecute: flagOption(true, 'No-execute and privilege-level protection in requests (EFR.NXSup).'),
    guestTranslation: flagOption(
      true,
      'Guest translation: GCR3 tables and guest page tables by PASID (EFR.GTSup). Off: GATS, GLXSup and PASmax read 0.',
    ),
    invalidateAll: flagOption(true, 'The INVALIDATE_IOMMU_ALL command (EFR.IASup).'),
    guestVirtualApic: flagOption(true, 'Guest virtual APIC: the 128-bit IRTE format (EFR.GASup).'),
    guestVapicMode: flagOption(
      true,
      'Virtual-APIC (posted) interrupt mode and the GA log (EFR.GAMSup = 1); needs guestVirtualApic.',
    ),
    hardwareErrors: flagOption(false, 'The hardware error registers at 0040h–0050h (EFR.HESup).'),
    hostLevels: z
      .literal(HOST_LEVELS)
      .default(6)
      .describe('Deepest host (v1) page table, DTE.Mode at most this (EFR.HATS): 4, 5 or 6 levels.'),
    guestLevels: z
      .literal(GUEST_LEVELS)
      .default(5)
      .describe(`Deepest guest (v2) page table (EFR.GATS): 4 or 5 levels.${gtOnly}`),
    gcr3Levels: z
      .literal(GCR3_LEVELS)
      .default(2)
      .describe(
        `Deepest GCR3 table, 9 PASID bits a level (EFR.GLXSup): 1, 2 or 3; must index pasidBits.${gtOnly}`,
      ),
    pasidBits: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(16)
      .describe(`PASID width (EFR.PASmax + 1), 1..20; Linux handles at most 16.${gtOnly}`),
    msiCapMmio: flagOption(
      true,
      'The MSI capability registers are mirrored in MMIO at 0158h–0164h (EFR.MsiCapMmioSup).',
    ),
    guestIoProtection: flagOption(true, 'Guest I/O protection, DTE.GIoV (EFR.GIoSup).'),
    hostAccess: flagOption(true, 'Host page-table accessed-bit updates, DTE.HAD (EFR.HASup).'),
    hostDirty: flagOption(true, 'Host page-table dirty-bit updates, DTE.HAD (EFR.HDSup).'),
    enhancedPpr: flagOption(true, 'Enhanced PPR handling, Control.EPHEn (EFR.EPHSup).'),
    gcr3TrpMode: flagOption(
      true,
      'The GCR3 table root pointer may be a guest physical address, Control.GCR3TRPMode (EFR2.GCR3TRPMode).',
    ),
    interruptRemapEntries: z
      .literal(INTERRUPT_REMAP_ENTRIES)
      .default(512)
      .describe('Largest interrupt-remapping table per device (EFR2.NumIntRemapSup): 512 or 2048.'),
    npCache: flagOption(
      false,
      'Not-present entries may be cached, so every change needs an invalidation (PCI capability NpCache); what emulated IOMMUs set.',
    ),
    iotlbSupport: flagOption(true, 'Remote IOTLBs, i.e. PCIe ATS (PCI capability IotlbSup).'),
    maxDeviceTableEntries: z
      .number()
      .int()
      .min(DEVICE_TABLE_ENTRIES_PER_PAGE)
      .max(65_536)
      .default(65_536)
      .describe(
        `Most device-table entries the unit reads (16-bit DeviceIDs: 65536); a multiple of ${DEVICE_TABLE_ENTRIES_PER_PAGE}, one 4 KiB page.`,
      ),
    dteCacheEntries: cacheEntriesOption(256, 1, 'Device-table entry cache capacity (entries, by DeviceID).'),
    dteCacheWays: cacheWaysOption(4, 'dteCacheEntries'),
    iotlbEntries: cacheEntriesOption(
      1024,
      1,
      'IOTLB capacity (entries), in iotlbWays-way sets; 1024 is the most QEMU keeps.',
    ),
    iotlbWays: cacheWaysOption(8, 'iotlbEntries'),
    pdCacheEntries: cacheEntriesOption(
      256,
      0,
      'Page-directory cache capacity (non-leaf table entries, tagged like the IOTLB); 0 models none.',
    ),
    pdCacheWays: cacheWaysOption(4, 'pdCacheEntries'),
    irtCacheEntries: cacheEntriesOption(256, 1, 'Interrupt-remapping table cache capacity (IRTEs).'),
    irtCacheWays: cacheWaysOption(4, 'irtCacheEntries'),
    cacheReplacement: z
      .enum(['lru', 'plru', 'random'])
      .default('plru')
      .describe(
        'Replacement in a full set of every cache: least recently used, tree pseudo-LRU (ways a power of two, at most 32) or random (from the config seed).',
      ),
  })
  .superRefine((o, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (o.x2apic && !o.guestVirtualApic)
      issue('x2apic', 'x2apic requires guestVirtualApic (a 32-bit destination needs the 128-bit IRTE)');
    if (o.guestVapicMode && !o.guestVirtualApic)
      issue('guestVapicMode', 'guestVapicMode requires guestVirtualApic');
    const levelsNeeded = Math.ceil(o.pasidBits / PASID_BITS_PER_GCR3_LEVEL);
    if (o.guestTranslation && o.gcr3Levels < levelsNeeded)
      issue(
        'gcr3Levels',
        `gcr3Levels ${o.gcr3Levels} cannot index ${o.pasidBits}-bit PASIDs (needs ${levelsNeeded})`,
      );
    if (o.maxDeviceTableEntries % DEVICE_TABLE_ENTRIES_PER_PAGE !== 0)
      issue(
        'maxDeviceTableEntries',
        `maxDeviceTableEntries ${o.maxDeviceTableEntries} is not a whole number of ${DEVICE_TABLE_ENTRIES_PER_PAGE}-entry pages`,
      );
    for (const cache of CACHES) {
      const entries = `${cache}Entries` as const;
      const ways = `${cache}Ways` as const;
      const problem = cacheOptionProblem(entries, o[entries], o[ways], o.cacheReplacement);
      if (problem !== undefined) issue(ways, problem);
    }
  });

export type AmdOptions = z.output<typeof AmdOptionsSchema>;

/** The features a validated options object describes (guest-translation fields 0 without GT). */
export function featuresFromOptions(o: AmdOptions): AmdFeatures {
  const gt = o.guestTranslation;
  return {
    pageRequests: o.pageRequests,
    x2apic: o.x2apic,
    noExecute: o.noExecute,
    guestTranslation: gt,
    invalidateAll: o.invalidateAll,
    guestVirtualApic: o.guestVirtualApic,
    guestVapicMode: o.guestVapicMode,
    hardwareErrors: o.hardwareErrors,
    hostLevels: o.hostLevels,
    guestLevels: gt ? o.guestLevels : 4,
    gcr3Levels: gt ? o.gcr3Levels : 1,
    pasidBits: gt ? o.pasidBits : 0,
    msiCapMmio: o.msiCapMmio,
    guestIoProtection: o.guestIoProtection,
    hostAccess: o.hostAccess,
    hostDirty: o.hostDirty,
    enhancedPpr: o.enhancedPpr,
    gcr3TrpMode: o.gcr3TrpMode,
    interruptRemapEntries: o.interruptRemapEntries,
    npCache: o.npCache,
    iotlbSupport: o.iotlbSupport,
    maxDeviceTableEntries: o.maxDeviceTableEntries,
    caches: {
      deviceTable: { entries: o.dteCacheEntries, ways: o.dteCacheWays },
      iotlb: { entries: o.iotlbEntries, ways: o.iotlbWays },
      pageDirectory: { entries: o.pdCacheEntries, ways: o.pdCacheWays },
      interruptRemapping: { entries: o.irtCacheEntries, ways: o.irtCacheWays },
      replacement: o.cacheReplacement,
    },
  };
}
