/**
 * Options of one VT-d remapping unit (`iommus[].options` in a config): what the unit implements, the
 * model's cache geometries and the version it reports. Every key has a default, so `{}` describes a modern
 * scalable-mode server IOMMU as Linux sees it; `featuresFromOptions` turns a validated result into the
 * {@link VtdFeatures} the capability registers and the checks use.
 *
 * The capability defaults follow a Sapphire Rapids DMAR unit as Linux logs it ("ver 6:0 cap
 * 19ed008c40780c66 ecap 3ee9e86f050df", host address width 52; intel/intel-device-plugins-for-kubernetes
 * issue #1836): VER 6.0, 16-bit domain IDs, PLMR/PHMR, SAGAW 4- and 5-level, MGAW 57, ZLR, 2 MiB and 1 GiB
 * second-stage pages, PSI with MAMV 45, DWD/DRD, FL1GP, FL5LP, PI, one fault record; C, QI, DT, IR, EIM,
 * PT, SC, NEST, SRS, PDS, SMTS, SLADS, SLTS, FLTS, SMPWCS. The model's own choices: PASIDs (20 bits) and
 * page requests are on, so SVA and PRI work by default (that sample reports ECAP.PASID and ECAP.PRS as 0);
 * the register offsets (capabilities.ts); and every cache geometry (no public figure for Intel's caches
 * was found; QEMU's IOTLB, a hash table flushed whole at 1024 entries, gives the IOTLB's capacity).
 *
 * Dependencies (VT-d §11.4.2/§11.4.3 field descriptions, and what Linux and QEMU require):
 * - `scalableMode: false` describes a legacy-mode unit: every scalable-mode capability (first and second
 *   stage, nesting, PASIDs, page requests and drain, SLADS, SMPWCS, SRS, ERS, FL1GP, FL5LP) is reported 0
 *   whatever its key says — ignored, not refused, so a legacy unit is one key. Units without ECAP.SMTS
 *   report them 0 (a "ver 1:0 cap 8d2078c106f0466 ecap f020df" server unit, utcs-scea/LAKE issue #10).
 * - Every other dependency is refused, with the path of the dependent key: nesting needs both stages,
 *   FL1GP/FL5LP the first stage, SLADS the second; EIM (QEMU: "eim=on cannot be selected without
 *   intremap=on"), PI and ESIRTPS need interrupt remapping; interrupt
 *   remapping, Device-TLBs and scalable mode need queued invalidation (the IEC, Device-TLB, PASID-cache and
 *   PASID-based IOTLB invalidations exist only as descriptors); page requests need Device-TLBs (PRI is a
 *   PCIe ATS extension; Linux enables PRI only on ATS devices); PDS needs page requests; SRS and ERS need
 *   PASIDs (the privilege and execute bits ride on the PASID prefix); MAMV needs PSI.
 * - Page requests do not need PASIDs: a page request descriptor says whether it carries one, and Linux
 *   ("iommu/vt-d: drop pasid requirement for prq initialization", 2024, reviewed by Intel) enables the
 *   page request queue on ECAP.PRS alone. Page requests are scalable-mode only: Linux enables PRI inside
 *   its scalable-mode branch, and the legacy context entry has no PRE bit.
 * - MGAW may not exceed the widest table the unit walks (SAGAW's depths; 48 or 57 bits for a scalable
 *   first stage): §11.4.2 limits a request to the smaller of MGAW and the table's width, so a wider MGAW
 *   could never be used. A narrower one is real (a 4 Series chipset reports MGAW 36 with SAGAW 3-level).
 *   That the spec states this as a rule is not confirmed.
 */
import { cacheEntriesOption, cacheOptionProblem, cacheWaysOption, flagOption, z } from '@iommukit/core';
import { SS_LEVELS, type SsLevels, type VtdFeatures } from './features.js';

/** Domain-ID widths CAP.ND can encode: 4 + 2·ND for ND 0–6 (§11.4.2). */
export const DOMAIN_ID_BITS = [4, 6, 8, 10, 12, 14, 16] as const;

/** The input width of a second-stage table of `levels` levels: 39, 48 or 57 bits. */
function ssInputBits(levels: SsLevels): number {
  return 12 + 9 * levels;
}

/** The model's caches, each an `<name>Entries` / `<name>Ways` pair of options. */
const CACHES = ['iotlb', 'contextCache', 'pasidCache', 'pagingStructureCache', 'iec'] as const;

const scalableOnly = ' Scalable mode only: reported 0 without scalableMode.';

export const VtdOptionsSchema = z
  .strictObject({
    version: z
      .strictObject({
        major: z.number().int().min(0).max(15).default(6).describe('VER_REG.MAX (bits 7:4).'),
        minor: z.number().int().min(0).max(15).default(0).describe('VER_REG.MIN (bits 3:0).'),
      })
      .prefault({})
      .describe('Architecture version the unit reports (VER_REG, §11.4.1); Sapphire Rapids reports 6.0.'),
    scalableMode: flagOption(
      true,
      'Scalable-mode translation (ECAP.SMTS): RTADDR.TTM = 01, scalable context entries and PASID tables. Off: a legacy-mode unit.',
    ),
    firstStage: flagOption(true, `First-stage (x86-64 format) translation (ECAP.FLTS).${scalableOnly}`),
    secondStage: flagOption(true, `Second-stage translation in scalable mode (ECAP.SLTS).${scalableOnly}`),
    nesting: flagOption(
      true,
      `Nested translation, PASID entry PGTT = nested (ECAP.NEST); needs both stages.${scalableOnly}`,
    ),
    pasidBits: z
      .number()
      .int()
      .min(0)
      .max(20)
      .default(20)
      .describe(`PASID width (ECAP.PASID, ECAP.PSS + 1), 0..20; 0: no PASIDs.${scalableOnly}`),
    pageRequests: flagOption(
      true,
      `Page requests (PRI) and the page request queue (ECAP.PRS); needs deviceTlb.${scalableOnly}`,
    ),
    pageRequestDrain: flagOption(
      true,
      `Page-request drain in invalidation-wait descriptors (ECAP.PDS); needs pageRequests.${scalableOnly}`,
    ),
    secondStageAccessDirty: flagOption(
      true,
      `Second-stage accessed/dirty flags, PASID entry SSADE (ECAP.SLADS); needs secondStage.${scalableOnly}`,
    ),
    scalableWalkCoherency: flagOption(
      true,
      `Page-walk coherency in scalable mode (ECAP.SMPWCS).${scalableOnly}`,
    ),
    supervisorRequests: flagOption(
      true,
      `Requests with the privileged-mode bit (ECAP.SRS); needs PASIDs.${scalableOnly}`,
    ),
    executeRequests: flagOption(
      false,
      `Requests with the execute bit and the second-stage X bit (ECAP.ERS, deprecated since spec 4.0); needs PASIDs.${scalableOnly}`,
    ),
    firstStage1GiB: flagOption(true, `First-stage 1 GiB pages (CAP.FL1GP); needs firstStage.${scalableOnly}`),
    firstStage5Level: flagOption(
      true,
      `First-stage 5-level paging, PASID entry FLPM = 1 (CAP.FL5LP); needs firstStage.${scalableOnly}`,
    ),
    queuedInvalidation: flagOption(true, 'Queued invalidation (ECAP.QI) and the IQ registers.'),
    deviceTlb: flagOption(true, 'Device-TLBs, i.e. PCIe ATS (ECAP.DT); needs queuedInvalidation.'),
    interruptRemapping: flagOption(
      true,
      'Interrupt remapping (ECAP.IR) and IRTA_REG; needs queuedInvalidation.',
    ),
    extendedInterruptMode: flagOption(
      true,
      'x2APIC (32-bit) interrupt destinations (ECAP.EIM); needs interruptRemapping.',
    ),
    postedInterrupts: flagOption(true, 'Posted interrupts (CAP.PI); needs interruptRemapping.'),
    sirtpInvalidates: flagOption(
      false,
      'SIRTP also invalidates the interrupt entry cache (CAP.ESIRTPS); needs interruptRemapping.',
    ),
    srtpInvalidates: flagOption(
      false,
      'SRTP also invalidates the context, PASID and IOTLB caches (CAP.ESRTPS).',
    ),
    passThrough: flagOption(true, 'Pass-through translation type (ECAP.PT).'),
    snoopControl: flagOption(true, 'Snoop control: the SNP bit and PGSNP (ECAP.SC).'),
    coherent: flagOption(true, 'Page-walk coherency in legacy mode (ECAP.C).'),
    abortDmaMode: flagOption(false, 'Abort-DMA mode, RTADDR.TTM = 11 (ECAP.ADMS).'),
    cachingMode: flagOption(
      false,
      'Caching mode (CAP.CM): not-present and erroneous entries may be cached, so every change needs an invalidation; what emulated IOMMUs set.',
    ),
    writeBufferFlush: flagOption(false, 'Software must flush the write buffer, GCMD.WBF (CAP.RWBF).'),
    protectedLowMemory: flagOption(true, 'Protected low-memory region, PLMBASE/PLMLIMIT (CAP.PLMR).'),
    protectedHighMemory: flagOption(true, 'Protected high-memory region, PHMBASE/PHMLIMIT (CAP.PHMR).'),
    domainIdBits: z
      .literal(DOMAIN_ID_BITS)
      .default(16)
      .describe('Domain-ID width (CAP.ND: 2^(4 + 2·ND) domains): 4, 6, 8, 10, 12, 14 or 16.'),
    sagaw: z
      .array(z.literal(SS_LEVELS))
      .min(1)
      .default([4, 5])
      .describe(
        'Second-stage table depths the unit walks (CAP.SAGAW): 3 (39-bit), 4 (48-bit), 5 (57-bit); legacy context AW and scalable PASID entry AW must name one.',
      ),
    mgawBits: z
      .number()
      .int()
      .min(32)
      .max(64)
      .default(57)
      .describe(
        'Widest input address translated, in bits (CAP.MGAW + 1); at most the widest table the unit walks.',
      ),
    hostAddressBits: z
      .number()
      .int()
      .min(32)
      .max(52)
      .default(52)
      .describe('Host address width from the ACPI DMAR table: output addresses must lie below 2^bits.'),
    zeroLengthRead: flagOption(true, 'Zero-length reads are supported (CAP.ZLR).'),
    faultRecords: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe('Fault recording registers (CAP.NFR + 1), 1..256.'),
    pageSelectiveInvalidation: flagOption(true, 'Page-selective IOTLB invalidation (CAP.PSI).'),
    maxAddressMask: z
      .number()
      .int()
      .min(0)
      .max(63)
      .default(45)
      .describe(
        'Largest address mask (AM) a page-selective invalidation takes (CAP.MAMV), 0..63; needs pageSelectiveInvalidation unless 0.',
      ),
    secondStage2MiB: flagOption(true, 'Second-stage 2 MiB pages (CAP.SLLPS bit 0).'),
    secondStage1GiB: flagOption(true, 'Second-stage 1 GiB pages (CAP.SLLPS bit 1).'),
    drainWrites: flagOption(true, 'Write draining on IOTLB invalidation (CAP.DWD).'),
    drainReads: flagOption(true, 'Read draining on IOTLB invalidation (CAP.DRD).'),
    iotlbEntries: cacheEntriesOption(
      1024,
      1,
      'IOTLB capacity (entries), in iotlbWays-way sets; 1024 is the most QEMU keeps.',
    ),
    iotlbWays: cacheWaysOption(8, 'iotlbEntries'),
    contextCacheEntries: cacheEntriesOption(256, 1, 'Context-cache capacity (entries, by source-id).'),
    contextCacheWays: cacheWaysOption(4, 'contextCacheEntries'),
    pasidCacheEntries: cacheEntriesOption(
      256,
      1,
      'PASID-cache capacity (entries, by PASID-table entry); unused without scalable mode.',
    ),
    pasidCacheWays: cacheWaysOption(4, 'pasidCacheEntries'),
    pagingStructureCacheEntries: cacheEntriesOption(
      256,
      0,
      'Paging-structure cache capacity (non-leaf table entries, tagged like the IOTLB); 0 models none.',
    ),
    pagingStructureCacheWays: cacheWaysOption(4, 'pagingStructureCacheEntries'),
    iecEntries: cacheEntriesOption(
      256,
      1,
      'Interrupt entry cache capacity (IRTEs); unused without interrupt remapping.',
    ),
    iecWays: cacheWaysOption(4, 'iecEntries'),
    cacheReplacement: z
      .enum(['lru', 'plru', 'random'])
      .default('plru')
      .describe(
        'Replacement in a full set of every cache: least recently used, tree pseudo-LRU (ways a power of two, at most 32) or random (from the config seed).',
      ),
  })
  .superRefine((o, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    const sm = o.scalableMode;
    if (sm && !o.queuedInvalidation)
      issue(
        'scalableMode',
        'scalable mode requires queuedInvalidation (PASID-cache invalidation is queued only)',
      );
    if (sm && !o.firstStage && !o.secondStage)
      issue('firstStage', 'scalable mode needs firstStage or secondStage translation');
    if (sm && o.nesting && !(o.firstStage && o.secondStage))
      issue('nesting', 'nesting requires both firstStage and secondStage');
    if (sm && o.firstStage1GiB && !o.firstStage)
      issue('firstStage1GiB', 'firstStage1GiB requires firstStage');
    if (sm && o.firstStage5Level && !o.firstStage)
      issue('firstStage5Level', 'firstStage5Level requires firstStage');
    if (sm && o.secondStageAccessDirty && !o.secondStage)
      issue('secondStageAccessDirty', 'secondStageAccessDirty requires secondStage');
    if (sm && o.pageRequests && !o.deviceTlb)
      issue('pageRequests', 'pageRequests requires deviceTlb (PRI is part of ATS)');
    if (sm && o.pageRequestDrain && !o.pageRequests)
      issue('pageRequestDrain', 'pageRequestDrain requires pageRequests');
    if (sm && o.supervisorRequests && o.pasidBits === 0)
      issue('supervisorRequests', 'supervisorRequests requires PASIDs (pasidBits > 0)');
    if (sm && o.executeRequests && o.pasidBits === 0)
      issue('executeRequests', 'executeRequests requires PASIDs (pasidBits > 0)');
    if (o.deviceTlb && !o.queuedInvalidation)
      issue('deviceTlb', 'deviceTlb requires queuedInvalidation (Device-TLB invalidation is queued only)');
    if (o.interruptRemapping && !o.queuedInvalidation)
      issue(
        'interruptRemapping',
        'interruptRemapping requires queuedInvalidation (interrupt entry cache invalidation is queued only)',
      );
    for (const key of ['extendedInterruptMode', 'postedInterrupts', 'sirtpInvalidates'] as const)
      if (o[key] && !o.interruptRemapping) issue(key, `${key} requires interruptRemapping`);
    if (o.maxAddressMask > 0 && !o.pageSelectiveInvalidation)
      issue('maxAddressMask', 'maxAddressMask > 0 requires pageSelectiveInvalidation');
    const depths = new Set<number>();
    for (const levels of o.sagaw) {
      if (depths.has(levels)) issue('sagaw', `sagaw lists depth ${levels} twice`);
      depths.add(levels);
    }
    const firstStageBits = o.firstStage5Level ? 57 : 48;
    const widest = Math.max(...o.sagaw.map(ssInputBits), sm && o.firstStage ? firstStageBits : 0);
    if (o.mgawBits > widest)
      issue('mgawBits', `mgawBits ${o.mgawBits} exceeds the widest table the unit walks (${widest} bits)`);
    for (const cache of CACHES) {
      const entries = `${cache}Entries` as const;
      const ways = `${cache}Ways` as const;
      const problem = cacheOptionProblem(entries, o[entries], o[ways], o.cacheReplacement);
      if (problem !== undefined) issue(ways, problem);
    }
  });

export type VtdOptions = z.output<typeof VtdOptionsSchema>;

/** The features a validated options object describes (scalable-mode capabilities 0 in legacy mode). */
export function featuresFromOptions(o: VtdOptions): VtdFeatures {
  const sm = o.scalableMode;
  return {
    version: { major: o.version.major, minor: o.version.minor },
    domainIdBits: o.domainIdBits,
    writeBufferFlush: o.writeBufferFlush,
    protectedLowMemory: o.protectedLowMemory,
    protectedHighMemory: o.protectedHighMemory,
    cachingMode: o.cachingMode,
    sagaw: [...o.sagaw].sort(),
    mgawBits: o.mgawBits,
    zeroLengthRead: o.zeroLengthRead,
    faultRecords: o.faultRecords,
    pageSelectiveInvalidation: o.pageSelectiveInvalidation,
    maxAddressMask: o.maxAddressMask,
    secondStage2MiB: o.secondStage2MiB,
    secondStage1GiB: o.secondStage1GiB,
    drainWrites: o.drainWrites,
    drainReads: o.drainReads,
    firstStage1GiB: sm && o.firstStage1GiB,
    firstStage5Level: sm && o.firstStage5Level,
    postedInterrupts: o.postedInterrupts,
    srtpInvalidates: o.srtpInvalidates,
    sirtpInvalidates: o.sirtpInvalidates,
    coherent: o.coherent,
    queuedInvalidation: o.queuedInvalidation,
    deviceTlb: o.deviceTlb,
    interruptRemapping: o.interruptRemapping,
    extendedInterruptMode: o.extendedInterruptMode,
    passThrough: o.passThrough,
    snoopControl: o.snoopControl,
    nesting: sm && o.nesting,
    pageRequests: sm && o.pageRequests,
    executeRequests: sm && o.executeRequests,
    supervisorRequests: sm && o.supervisorRequests,
    pasidBits: sm ? o.pasidBits : 0,
    scalableMode: sm,
    firstStage: sm && o.firstStage,
    secondStage: sm && o.secondStage,
    secondStageAccessDirty: sm && o.secondStageAccessDirty,
    scalableWalkCoherency: sm && o.scalableWalkCoherency,
    abortDmaMode: o.abortDmaMode,
    pageRequestDrain: sm && o.pageRequestDrain,
    hostAddressBits: o.hostAddressBits,
  };
}
