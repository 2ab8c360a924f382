/**
 * Options of one SMMUv3 instance (`iommus[].options` in a config): what the implementation supports, the
 * model's cache capacities and its identification values. Every key has a default, so `{}` describes a
 * typical modern SMMU. Combinations real hardware cannot have are rejected with the path of the offending
 * key; `featuresFromOptions` turns a validated result into the {@link Smmuv3Features} the ID registers and
 * structure checks use.
 */
import { cacheOptionProblem, z } from '@iommukit/core';
import { OAS_BITS, type Smmuv3Features } from './features.js';

/** Largest queue the architecture allows, as log2 of entries (SMMUv3 §6.3.2 IDR1.CMDQS/EVENTQS/PRIQS). */
export const MAX_QUEUE_LOG2 = 19;

/** Architecture versions the model can claim in AIDR (SMMUv3 §6.3.8); see `archVersion` below. */
export const ARCH_VERSIONS = ['3.0', '3.1'] as const;
export type ArchVersion = (typeof ARCH_VERSIONS)[number];

const queueLog2 = z.number().int().min(0).max(MAX_QUEUE_LOG2).default(MAX_QUEUE_LOG2);

export const Smmuv3OptionsSchema = z
  .strictObject({
    s1: z.boolean().default(true).describe('Stage 1 translation (IDR0.S1P).'),
    s2: z.boolean().default(true).describe('Stage 2 translation (IDR0.S2P).'),
    shareDomains: z
      .boolean()
      .default(false)
      .describe(
        'Driver: a paging domain may be attached to masters behind several SMMUs (a tag per SMMU, invalidations sent to each), as a posted Linux series proposes; mainline refuses it (EINVAL).',
      ),
    nesting: z
      .boolean()
      .default(true)
      .describe('Nested (stage 1 over stage 2) translation is offered to software; needs both stages.'),
    sidBits: z.number().int().min(0).max(32).default(16).describe('StreamID width (IDR1.SIDSIZE, 0..32).'),
    ssidBits: z
      .number()
      .int()
      .min(0)
      .max(20)
      .default(20)
      .describe('SubstreamID width (IDR1.SSIDSIZE, 0..20); 0: no substreams.'),
    oasBits: z.literal(OAS_BITS).default(48).describe('Output address size (IDR5.OAS).'),
    granules: z
      .strictObject({
        g4k: z.boolean().default(true).describe('4 KiB granule (IDR5.GRAN4K).'),
        g16k: z.boolean().default(true).describe('16 KiB granule (IDR5.GRAN16K).'),
        g64k: z.boolean().default(true).describe('64 KiB granule (IDR5.GRAN64K).'),
      })
      .prefault({})
      .describe('Translation granules (IDR5.GRAN4K/16K/64K).'),
    vaBits: z
      .literal([48, 52])
      .default(48)
      .describe('Input (virtual) address size per CD.TTBx: 48, or 52 (IDR5.VAX = 1).'),
    twoLevelStreamTable: z.boolean().default(true).describe('2-level Stream table (IDR0.ST_LEVEL = 1).'),
    twoLevelCdTable: z.boolean().default(true).describe('2-level CD tables (IDR0.CD2L).'),
    asid16: z.boolean().default(true).describe('16-bit ASIDs (IDR0.ASID16).'),
    vmid16: z.boolean().default(true).describe('16-bit VMIDs (IDR0.VMID16).'),
    ats: z.boolean().default(true).describe('PCIe ATS (IDR0.ATS).'),
    pri: z.boolean().default(true).describe('PCIe PRI and the PRI queue (IDR0.PRI).'),
    stallModel: z
      .enum(['stall', 'no-stall', 'force-stall'])
      .default('stall')
      .describe('Stall model (IDR0.STALL_MODEL).'),
    stallMax: z
      .number()
      .int()
      .min(1)
      .max(0xffff)
      .default(64)
      .describe('Most stalled transactions outstanding at once (IDR5.STALL_MAX); unused without stalls.'),
    httu: z
      .enum(['none', 'access', 'access-dirty'])
      .default('access-dirty')
      .describe('Hardware Access flag / Dirty state updates (IDR0.HTTU).'),
    rangeInvalidation: z
      .boolean()
      .default(true)
      .describe('Range invalidation and level hints in TLBI commands (IDR3.RIL).'),
    msi: z.boolean().default(true).describe('Message-signalled interrupts (IDR0.MSI).'),
    sev: z
      .boolean()
      .default(false)
      .describe(
        'WFE wake-up events to the PEs (IDR0.SEV): a CMD_SYNC with CS = SIG_SEV and a Command queue leaving full send one, and the driver waits with WFE.',
      ),
    wiredIrqs: z
      .boolean()
      .default(true)
      .describe('Wired interrupt lines (platform description, not an ID register field).'),
    coherent: z.boolean().default(true).describe('IO-coherent table, queue and MSI accesses (IDR0.COHACC).'),
    cmdqLog2: queueLog2.describe(
      'Largest Command queue the hardware accepts, as log2 of entries (IDR1.CMDQS).',
    ),
    evtqLog2: queueLog2.describe(
      'Largest Event queue the hardware accepts, as log2 of entries (IDR1.EVENTQS).',
    ),
    priqLog2: queueLog2.describe('Largest PRI queue the hardware accepts, as log2 of entries (IDR1.PRIQS).'),
    gbpaAbort: z
      .boolean()
      .default(false)
      .describe(
        'GBPA.ABORT at reset (IMPLEMENTATION DEFINED, SMMUv3 §6.3.14): abort instead of bypass while disabled.',
      ),
    tlbEntries: z
      .number()
      .int()
      .min(1)
      .max(1_048_576)
      .default(512)
      .describe('TLB capacity (entries): tlbWays ways in each of tlbEntries / tlbWays sets.'),
    tlbWays: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(4)
      .describe('TLB associativity (ways per set); tlbEntries must be a multiple of it.'),
    tlbReplacement: z
      .enum(['lru', 'plru', 'random'])
      .default('plru')
      .describe(
        'TLB replacement in a full set: least recently used, tree pseudo-LRU (ways a power of two, at most 32; the default of the MMU-600 TBU micro TLB) or random (from the config seed).',
      ),
    walkCacheEntries: z
      .number()
      .int()
      .min(0)
      .max(65_536)
      .default(256)
      .describe(
        'Capacity of each walk cache (stage 1 and stage 2; table descriptors, tagged like the TLB), in walkCacheWays-way sets with the TLB replacement policy; 0 models none. The default is the depth of one MMU-600 TCU walk cache.',
      ),
    walkCacheWays: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(4)
      .describe('Walk cache associativity (ways per set); walkCacheEntries must be a multiple of it.'),
    configCacheEntries: z
      .number()
      .int()
      .min(1)
      .max(65_536)
      .default(64)
      .describe(
        "Capacity of each configuration cache (STEs by StreamID; CDs by StreamID and SubstreamID), in configCacheWays-way sets with the TLB replacement policy. The default, 64 entries of 4 ways, is the configuration cache of gem5's SMMUv3 model.",
      ),
    configCacheWays: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(4)
      .describe(
        'Configuration cache associativity (ways per set); configCacheEntries must be a multiple of it.',
      ),
    iidr: z
      .strictObject({
        implementer: z
          .number()
          .int()
          .min(0)
          .max(0xfff)
          .default(0)
          .describe('JEP106 code: [11:8] continuation, [7] zero, [6:0] identity (Arm is 0x43B).'),
        revision: z.number().int().min(0).max(0xf).default(0).describe('IIDR.Revision.'),
        variant: z.number().int().min(0).max(0xf).default(0).describe('IIDR.Variant.'),
        productId: z.number().int().min(0).max(0xfff).default(0).describe('IIDR.ProductID.'),
      })
      .prefault({})
      .describe('Implementation identification (IIDR, SMMUv3 §6.3.7).'),
    archVersion: z
      .enum(ARCH_VERSIONS)
      .default('3.1')
      .describe(
        'SMMUv3.x the instance claims (AIDR). 3.2 and later make features mandatory this model does not implement (Hyp with both stages, FWB, BBML; §6.3.1, §6.3.4), so 3.1 is the newest; RIL, a 3.2 feature, may still be offered (§2.9 permits v3.(x+1) features in a v3.x implementation).',
      ),
  })
  .superRefine((o, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (!o.s1 && !o.s2) issue(['s1'], 'at least one translation stage (s1 or s2) is required');
    if (o.nesting && !(o.s1 && o.s2)) issue(['nesting'], 'nesting requires both s1 and s2');
    // IDR0.PRI is RES0 when IDR0.ATS == 0 (§6.3.1).
    if (o.pri && !o.ats) issue(['pri'], 'PRI requires ATS');
    // CD tables are indexed by SubstreamID: a 2-level CD table without substreams is meaningless.
    if (o.twoLevelCdTable && o.ssidBits === 0)
      issue(['twoLevelCdTable'], '2-level CD tables require ssidBits > 0');
    // IDR1.SIDSIZE >= 7 requires IDR0.ST_LEVEL != 0 (§6.3.2).
    if (o.sidBits >= 7 && !o.twoLevelStreamTable)
      issue(['twoLevelStreamTable'], `sidBits ${o.sidBits} (>= 7) requires a 2-level stream table`);
    if (!o.granules.g4k && !o.granules.g16k && !o.granules.g64k)
      issue(['granules'], 'at least one translation granule is required');
    // OAS 52 needs GRAN64K when neither DS nor D128 is implemented; reserved in SMMUv3.0 (§6.3.6).
    if (o.oasBits === 52 && !o.granules.g64k) issue(['oasBits'], 'a 52-bit OAS requires the 64K granule');
    if (o.oasBits === 52 && o.archVersion === '3.0') issue(['oasBits'], 'a 52-bit OAS requires SMMUv3.1');
    // IDR5.VAX >= 1 needs GRAN64K without DS; VAX is RES0 in SMMUv3.0 (§6.3.6).
    if (o.vaBits === 52 && !o.granules.g64k) issue(['vaBits'], '52-bit VAs require the 64K granule');
    if (o.vaBits === 52 && o.archVersion === '3.0') issue(['vaBits'], '52-bit VAs require SMMUv3.1');
    // An SMMU associated with a PCI system must not have STALL_MODEL == 0b10 (§6.3.1); ATS implies PCIe.
    if (o.stallModel === 'force-stall' && o.ats)
      issue(['stallModel'], 'forced stall is not allowed with ATS (PCIe)');
    if (!o.msi && !o.wiredIrqs) issue(['wiredIrqs'], 'an SMMU without MSIs needs wired interrupts');
    // The TLB, the walk caches and the configuration caches are set-associative under the TLB's policy.
    const cacheGeometry = (
      entries: 'tlbEntries' | 'walkCacheEntries' | 'configCacheEntries',
      ways: 'tlbWays' | 'walkCacheWays' | 'configCacheWays',
    ) => {
      const problem = cacheOptionProblem(entries, o[entries], o[ways], o.tlbReplacement);
      if (problem !== undefined) issue([ways], problem);
    };
    cacheGeometry('tlbEntries', 'tlbWays');
    cacheGeometry('walkCacheEntries', 'walkCacheWays');
    cacheGeometry('configCacheEntries', 'configCacheWays');
    // IIDR.Implementer[7] is always 0 (§6.3.7).
    if (o.iidr.implementer & 0x80) issue(['iidr', 'implementer'], 'bit 7 of a JEP106 implementer code is 0');
  });

export type Smmuv3Options = z.output<typeof Smmuv3OptionsSchema>;

/** The features a validated options object describes. */
export function featuresFromOptions(options: Smmuv3Options): Smmuv3Features {
  return {
    s1: options.s1,
    s2: options.s2,
    sidBits: options.sidBits,
    ssidBits: options.ssidBits,
    oasBits: options.oasBits,
    granules: { g4k: options.granules.g4k, g16k: options.granules.g16k, g64k: options.granules.g64k },
    twoLevelStreamTable: options.twoLevelStreamTable,
    twoLevelCdTable: options.twoLevelCdTable,
    asid16: options.asid16,
    vmid16: options.vmid16,
    ats: options.ats,
    pri: options.pri,
    stallModel: options.stallModel,
    httu: options.httu,
    rangeInvalidation: options.rangeInvalidation,
    msi: options.msi,
    wiredIrqs: options.wiredIrqs,
    cmdqLog2: options.cmdqLog2,
    evtqLog2: options.evtqLog2,
    priqLog2: options.priqLog2,
  };
}
