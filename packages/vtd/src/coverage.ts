/**
 * What the VT-d model does with every register, structure field, capability, invalidation descriptor and
 * fault reason the specification (rev 5.10) defines: a hand-written status per item, keyed by the names
 * the code uses (`REG`, the FRCD layout, `CAP_LAYOUT`/`ECAP_LAYOUT`, the root, context and PASID entry
 * codecs, `INV_TYPE` and its descriptors, the page request descriptor, the IRTE codec, `FR` and `IR_FR`),
 * plus the spec's items the code has no name for. `coverage-doc.ts` renders it into docs/vendors/vtd.md;
 * `coverage.test.ts` fails when an item in the code has no status here or an entry names something the
 * code lacks, so the page cannot drift.
 *
 * Statuses, judged from the device model (`hw/vtd.ts` and what it wires: the translation pipeline, the
 * caches, the global commands, fault recording, both invalidation interfaces, the page request queue and
 * interrupt remapping), not from the codecs:
 * - `modelled`: the model does what the spec says — a register's reads, writes and effects; a field's
 *   effect on translation, caching, fault recording or interrupts; a descriptor's action; a capability the
 *   unit implements as it reports it; a fault reason the model records for the spec's condition.
 * - `checked`: decoded and validated (a reserved or unsupported value is the spec's fault or Invalidation
 *   Queue Error) but with no further behaviour.
 * - `not modelled`: no effect; the note says why (the capability is reported 0, so the field is reserved;
 *   the bus carries no memory types or snoop attributes; no ATS Translated requests reach the model; or
 *   the behaviour is not implemented).
 * A note that starts with or contains "Deviation:" says where the model departs from rev 5.10's text.
 * Section numbers are rev 5.10's (§11.4 registers, §9 structures, §6.5.2 descriptors, §7.1.3 Table 30 and
 * §5.1.4.1 Table 15 fault reasons).
 */
import type { Coverage, FieldCoverage, SpecOnlyCode, SpecOnlyField, SpecOnlyRegister } from '@iommukit/core';
import type { CapFields, EcapFields } from './hw/capabilities.js';
import type { FR, IR_FR } from './hw/fault-reasons.js';
import type { INV_TYPE, InvDescriptor } from './hw/inv-descriptors.js';
import type { PostedIrte, RemappedIrte } from './hw/irte.js';
import type { PageRequest } from './hw/page-requests.js';
import type { PasidDirEntry, PasidEntry } from './hw/pasid-entry.js';
import type { FaultRecord, RegName } from './hw/regs.js';
import type {
  LegacyContextEntry,
  LegacyRootEntry,
  ScalableContextEntry,
  ScalableRootEntry,
} from './hw/root-context.js';

export type InvTypeName = keyof typeof INV_TYPE;
/** The descriptor of one type, as `decodeInvDescriptor` returns it. */
export type InvDescriptorOf<K extends InvTypeName> = Extract<InvDescriptor, { type: (typeof INV_TYPE)[K] }>;
export type InvDescriptorFieldName<K extends InvTypeName> = Exclude<keyof InvDescriptorOf<K>, 'type'>;
/** IRTE fields: what `decodeIrte` returns but the lowest reserved bit it found. */
export type IrteFieldName<E> = Exclude<keyof E, 'reservedBit'>;

const M = 'modelled';
const C = 'checked';
const N = 'not modelled';

const notPresent = (why: string) => `Not present: ${why}; the offset reads 0 and ignores writes.`;
const ATS =
  'no ATS Translated requests reach the model (an endpoint puts the address its ATC holds on the bus)';
const NO_SNOOP = 'the bus has no caches to snoop, so structure reads always see memory';
const NO_MEMORY_TYPES = 'the bus carries no memory types';

// ---------------------------------------------------------------------------------------------------------
// Registers (§11.4).

const EVENT = (event: string, ctl: string) =>
  `${event}: IM masks the message, IP is set while it is held and cleared when IM clears or software services the condition (${ctl}).`;

export const REGISTER_COVERAGE: Readonly<Record<RegName, Coverage>> = {
  VER: {
    status: M,
    note: 'MAX and MIN from `version` (default 6.0); major 6 and up also turns register-based invalidation off.',
  },
  CAP: { status: M, note: 'Encoded from the options; every field is in the CAP table below.' },
  ECAP: { status: M, note: 'Encoded from the options; every field is in the ECAP table below.' },
  GCMD: {
    status: M,
    note: 'Write-only (reads 0). TE, QIE, IRE and CFI are persistent (GSTS follows); SRTP latches RTADDR, SIRTP latches IRTA (and flushes the IEC with CAP.ESIRTPS); WBF completes at once; a command the unit lacks is ignored; bits 29:28 are reserved. Deviation: clearing TE in scalable mode does not invalidate the DMA-remapping caches, and clearing IRE with CAP.ESIRTPS does not flush the IEC (§11.4.4.1 says both do).',
  },
  GSTS: {
    status: M,
    note: 'TES, QIES, IRES and CFIS follow their commands; RTPS and IRTPS are set when SRTP and SIRTP complete (at once); WBFS is never seen set.',
  },
  RTADDR: {
    status: M,
    note: 'RTA (below the host address width) and TTM take effect at SRTP: 00 legacy, 01 scalable (with SMTS), 11 abort DMA (with ADMS); 10, or a mode the unit lacks, faults every request with 0x30. SSIRWE (bit 7) is reserved (ECAP.SSIRWS = 0).',
  },
  CCMD: {
    status: M,
    note: 'Writing the high half with ICC set performs the context-cache invalidation (global, domain, or device with FM) at once, clears ICC and reports CAIG; CIRG 00 is ignored with CAIG 00. SID and FM read back. Deviation: in scalable mode, with VER major 6 and up, or with queued invalidation enabled the request is left pending (ICC stays set); §11.4.6.1 completes it with CAIG 00 in the first two cases.',
  },
  FSTS: {
    status: M,
    note: 'PFO, PPF (the OR of every record’s F), FRI, IQE (with QI) as §7.2.1 and §7.3 say; ICE and ITE (with DT) are never set: endpoints complete device-TLB invalidations at once. Bit 7 (PRO in earlier revisions) reads 0.',
  },
  FECTL: { status: M, note: EVENT('The fault event', 'FSTS clear') },
  FEDATA: { status: M, note: 'IMD (bits 15:0) of the fault event message; bits 31:16 read 0.' },
  FEADDR: { status: M, note: 'MA (bits 31:2) of the fault event message.' },
  FEUADDR: { status: M, note: 'MUA of the fault event message; writable only with ECAP.EIM, else reads 0.' },
  AFLOG: {
    status: N,
    note: notPresent('rev 5.10 has no advanced fault logging (offset 0x58 and CAP bit 3 are reserved)'),
  },
  PMEN: {
    status: N,
    note: 'EPM is stored and PRS reads 0. Deviation: DMA to the protected low and high memory regions is not blocked, although CAP.PLMR and CAP.PHMR advertise them (§11.4.8.1).',
  },
  PLMBASE: {
    status: C,
    note: 'RW, bits 31:20 (1 MiB granularity, the implementation’s choice); no effect, as PMEN.EPM has none.',
  },
  PLMLIMIT: { status: C, note: 'RW, bits 31:20; no effect, as PMEN.EPM has none.' },
  PHMBASE: {
    status: C,
    note: 'RW, bits 63:20 below the host address width; no effect, as PMEN.EPM has none.',
  },
  PHMLIMIT: {
    status: C,
    note: 'RW, bits 63:20 below the host address width; no effect, as PMEN.EPM has none.',
  },
  IQH: {
    status: M,
    note: 'Advances past each valid descriptor; stays on a descriptor that raised IQE; reset to 0 when queued invalidation is disabled.',
  },
  IQT: {
    status: M,
    note: 'A write processes the queue (at most one queue’s worth per trigger); a tail beyond the queue is IQEI 1, bit 4 set with 256-bit descriptors IQEI 6.',
  },
  IQA: {
    status: M,
    note: 'IQA and QS locate the queue; DW (writable with SMTS) selects 256-bit descriptors; 128-bit descriptors in scalable mode are IQEI 5.',
  },
  ICS: {
    status: M,
    note: 'IWC is set by a wait descriptor with IF; W1C, and clearing it withdraws a pending event.',
  },
  IECTL: { status: M, note: EVENT('The invalidation completion event', 'ICS.IWC clear') },
  IEDATA: { status: M, note: 'IMD of the invalidation completion message; bits 31:16 read 0.' },
  IEADDR: { status: M, note: 'MA (bits 31:2) of the invalidation completion message.' },
  IEUADDR: { status: M, note: 'MUA of the invalidation completion message; writable only with ECAP.EIM.' },
  IQERCD: {
    status: M,
    note: 'IQEI takes the reason of each IQE before FSTS.IQE is set; ITESID and ICESID read 0 (no ITE or ICE).',
  },
  IRTA: {
    status: M,
    note: 'IRTA, S (2^(S+1) entries) and EIME (with ECAP.EIM) take effect at SIRTP; before the first SIRTP every remappable interrupt is 0x21.',
  },
  PQH: { status: M, note: 'Software frees page request descriptors by moving it; head == tail is empty.' },
  PQT: {
    status: M,
    note: 'The unit writes each descriptor at PQT and advances it; one entry short of PQH is full.',
  },
  PQA: { status: M, note: 'PQA and PQS (2^PQS 4 KiB pages) locate the page request queue.' },
  PRS: {
    status: M,
    note: 'PPR is set by a descriptor write, PRO by a full queue (requests are then dropped until software clears it); W1C.',
  },
  PECTL: { status: M, note: EVENT('The page request event', 'PRS clear') },
  PEDATA: { status: M, note: 'IMD of the page request event message; bits 31:16 read 0.' },
  PEADDR: { status: M, note: 'MA (bits 31:2) of the page request event message.' },
  PEUADDR: { status: M, note: 'MUA of the page request event message; writable only with ECAP.EIM.' },
  IVA: {
    status: M,
    note: 'Write-only (reads 0): ADDR (below MGAW), IH and AM of a page-selective IOTLB_REG invalidation.',
  },
  IOTLB: {
    status: M,
    note: 'Writing the high half with IVT set performs the IOTLB invalidation at once (page-selective without CAP.PSI as domain-selective), clears IVT and reports IAIG; IIRG 00 or AM above MAMV is ignored with IAIG 00; DR/DW (with DRD/DWD) have no effect. Deviation: refused (IVT stays set) in the cases CCMD is.',
  },
  MTRRCAP: { status: N, note: notPresent('no memory type support (ECAP.MTS = 0)') },
  MTRRDEF: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX64K_00000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX16K_80000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX16K_A0000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_C0000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_C8000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_D0000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_D8000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_E0000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_E8000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_F0000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_FIX4K_F8000: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE0: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK0: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE1: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK1: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE2: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK2: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE3: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK3: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE4: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK4: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE5: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK5: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE6: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK6: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE7: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK7: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE8: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK8: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSBASE9: { status: N, note: notPresent('ECAP.MTS = 0') },
  MTRR_PHYSMASK9: { status: N, note: notPresent('ECAP.MTS = 0') },
  FRCD: {
    status: M,
    note: 'CAP.NFR + 1 fault recording registers of 16 bytes from here (CAP.FRO); fields in their own table below. Only F (bit 127) is writable (W1C).',
  },
  VCMD: {
    status: N,
    note: notPresent('no virtual command interface (ECAP.VCS = 0, what hardware reports)'),
  },
  VCRSP: { status: N, note: notPresent('ECAP.VCS = 0') },
  VCCAP: { status: N, note: notPresent('ECAP.VCS = 0') },
};

const PERFMON = notPresent('no performance monitoring (ECAP.PMS = 0)');
const ECMD = notPresent('no enhanced command interface (CAP.ECMDS = 0)');

/** Registers of the spec's register overview (§11.4) that `REG` does not list, by their spec names. */
export const SPEC_ONLY_REGISTERS: readonly SpecOnlyRegister[] = [
  { name: 'Performance Monitoring Capability', offset: '0x0300', status: N, note: PERFMON },
  { name: 'Performance Monitoring Configuration Offset', offset: '0x0310', status: N, note: PERFMON },
  { name: 'Performance Monitoring Freeze Offset', offset: '0x0314', status: N, note: PERFMON },
  { name: 'Performance Monitoring Overflow Offset', offset: '0x0318', status: N, note: PERFMON },
  { name: 'Performance Monitoring Counter Offset', offset: '0x031C', status: N, note: PERFMON },
  { name: 'Performance Monitoring Interrupt Status', offset: '0x0324', status: N, note: PERFMON },
  { name: 'Performance Monitoring Interrupt Control', offset: '0x0328', status: N, note: PERFMON },
  { name: 'Performance Monitoring Interrupt Data', offset: '0x032C', status: N, note: PERFMON },
  { name: 'Performance Monitoring Interrupt Address', offset: '0x0330', status: N, note: PERFMON },
  { name: 'Performance Monitoring Interrupt Upper Address', offset: '0x0334', status: N, note: PERFMON },
  { name: 'Performance Monitoring Event Capability', offset: '0x0380–0x03FF', status: N, note: PERFMON },
  { name: 'Enhanced Command', offset: '0x0400', status: N, note: ECMD },
  { name: 'Enhanced Command Extended Operand', offset: '0x0408', status: N, note: ECMD },
  { name: 'Enhanced Command Response', offset: '0x0410', status: N, note: ECMD },
  { name: 'Enhanced Command Status 0, 1', offset: '0x0420, 0x0428', status: N, note: ECMD },
  { name: 'Enhanced Command Capability 0–3', offset: '0x0430–0x0448', status: N, note: ECMD },
  {
    name: 'RDT Configuration',
    offset: '0x0DC0',
    status: N,
    note: notPresent('no RDT configuration support (ECAP.RDTS = 0)'),
  },
  { name: 'Virtual Command Extended Operand', offset: '0x0E08', status: N, note: notPresent('ECAP.VCS = 0') },
  {
    name: 'Performance Monitoring Freeze Status, Overflow Status, Counter Configuration and Filter, Counter Capability, Counter registers',
    offset: 'at the Freeze, Overflow, Configuration and Counter Offsets',
    status: N,
    note: 'No performance monitoring (ECAP.PMS = 0), so no offsets are reported.',
  },
];

// ---------------------------------------------------------------------------------------------------------
// Fault recording registers (§11.4.7.6), written by the fault recorder (§7.2.1).

export const FAULT_RECORD_COVERAGE: Readonly<Record<keyof FaultRecord, FieldCoverage>> = {
  fi: {
    spec: 'FI',
    status: M,
    note: 'DMA faults: the page address, bits at or above the widest AGAW read 0; interrupt faults: the interrupt_index in bits 63:48 (0 for 0x20 and 0x25).',
  },
  sid: { spec: 'SID', status: M, note: 'The requester ID of the faulted request.' },
  t2: {
    spec: 'T2',
    status: M,
    note: 'Set for a page request (T1 T2 = 01); the model has no AtomicOp requests.',
  },
  priv: {
    spec: 'PRIV',
    status: M,
    note: 'Supervisor privilege requested, with a PASID (RsvdZ without ECAP.PASID).',
  },
  exe: { spec: 'EXE', status: M, note: 'Execute requested, with a PASID (RsvdZ without ECAP.PASID).' },
  pp: { spec: 'PP', status: M, note: 'The request carried a PASID (RsvdZ without ECAP.PASID).' },
  fr: { spec: 'FR', status: M, note: 'The fault reason (tables below).' },
  pasid: { spec: 'PV', status: M, note: 'The request’s PASID when PP is set.' },
  at: {
    spec: 'AT',
    status: M,
    note: `Untranslated (00), or translation request (01) for a Translation Request's fault, with ECAP.DT; never translated (10), as ${ATS}; RsvdZ without DT.`,
  },
  t: { spec: 'T1', status: M, note: 'Read (1) or write (0); 0 for a page request.' },
  f: {
    spec: 'F',
    status: M,
    note: 'Set last; W1C. A fault finding F set at the record index sets FSTS.PFO and is lost; faults are never compressed (optional).',
  },
};

// ---------------------------------------------------------------------------------------------------------
// Capability registers (§11.4.2, §11.4.3): what the unit does with what each field reports.

const READS_0 = (what: string) => `Reads 0: ${what}.`;

export const CAP_COVERAGE: Readonly<Record<keyof CapFields, FieldCoverage>> = {
  nd: {
    spec: 'ND',
    status: M,
    note: 'From `domainIdBits`: a DID above the width is reserved in context and PASID entries (0xB, 0x5A) and ignored by invalidations.',
  },
  afl: {
    spec: 'AFL',
    status: N,
    note: READS_0('bit 3 is reserved in rev 5.10 (advanced fault logging before)'),
  },
  rwbf: {
    spec: 'RWBF',
    status: M,
    note: 'From `writeBufferFlush`: GCMD.WBF is accepted only then and completes at once; the model has no write buffer, so memory updates are always visible.',
  },
  plmr: {
    spec: 'PLMR',
    status: N,
    note: 'From `protectedLowMemory`: PLMBASE/PLMLIMIT exist, but the region is not enforced (see PMEN).',
  },
  phmr: {
    spec: 'PHMR',
    status: N,
    note: 'From `protectedHighMemory`: PHMBASE/PHMLIMIT exist, but the region is not enforced (see PMEN).',
  },
  cm: {
    spec: 'CM',
    status: M,
    note: 'From `cachingMode`: not-present and erroneous root, context and PASID entries are cached (tagged DID 0) until invalidated.',
  },
  sagaw: {
    spec: 'SAGAW',
    status: M,
    note: 'From `sagaw`: a context or PASID entry AW it lacks is 0x3 or 0x5B. Rev 5.10 has VER 6+ units without SSTS report 0; the model reports the option.',
  },
  mgaw: {
    spec: 'MGAW',
    status: M,
    note: 'From `mgawBits`: a second-stage input at or above 2^MGAW (or the entry’s AGAW) faults; it also bounds IVA.ADDR.',
  },
  zlr: { spec: 'ZLR', status: N, note: 'From `zeroLengthRead`; the bus carries no zero-length reads.' },
  fro: { spec: 'FRO', status: M, note: '0x22: fault recording registers at 0x220.' },
  sllps: {
    spec: 'SSLPS',
    status: M,
    note: 'From the options: second-stage 2 MiB and 1 GiB leaves; PS set at a level without them is a reserved-field fault.',
  },
  psi: {
    spec: 'PSI',
    status: M,
    note: 'From `pageSelectiveInvalidation`: without it a page-selective IOTLB invalidation is performed domain-selective (see the IOTLB descriptor).',
  },
  nfr: { spec: 'NFR', status: M, note: 'From `faultRecords` (NFR + 1 records).' },
  mamv: { spec: 'MAMV', status: M, note: 'From `maxAddressMask`: a larger AM is refused (IAIG 00, IQEI 4).' },
  dwd: {
    spec: 'DWD',
    status: N,
    note: 'From `drainWrites` (deprecated, hardware reports 1): IOTLB.DW is writable with it; draining has no effect, the model queues no requests.',
  },
  drd: {
    spec: 'DRD',
    status: N,
    note: 'From `drainReads` (deprecated, hardware reports 1): IOTLB.DR is writable with it; draining has no effect.',
  },
  fl1gp: {
    spec: 'FS1GP',
    status: M,
    note: 'From `firstStage1GiB` (scalable mode): first-stage 1 GiB leaves.',
  },
  pi: {
    spec: 'PI',
    status: M,
    note: 'From `postedInterrupts`: posted-format IRTEs (IM = 1) post into their descriptor.',
  },
  fl5lp: {
    spec: 'FS5LP',
    status: M,
    note: 'From `firstStage5Level`: FSPM = 01b (5-level) is allowed, else 0x5B.',
  },
  ecmds: { spec: 'ECMDS', status: N, note: READS_0('no enhanced command interface') },
  esirtps: {
    spec: 'ESIRTPS',
    status: M,
    note: 'From `sirtpInvalidates`: SIRTP flushes the IEC. Deviation: clearing IRE does not flush it.',
  },
  esrtps: {
    spec: 'ESRTPS',
    status: M,
    note: 'From `srtpInvalidates`: SRTP invalidates the context, PASID and IOTLB caches.',
  },
};

export const CAP_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'DEP', msb: 23, lsb: 23, status: N, note: READS_0('deprecated (ISOCH in earlier revisions)') },
];

export const ECAP_COVERAGE: Readonly<Record<keyof EcapFields, FieldCoverage>> = {
  c: { spec: 'C', status: N, note: `From \`coherent\`; ${NO_SNOOP}.` },
  qi: { spec: 'QI', status: M, note: 'From `queuedInvalidation`: the invalidation queue and its registers.' },
  dt: {
    spec: 'DT',
    status: M,
    note: `From \`deviceTlb\`: Translation Requests are answered through context TT 01b or DTE, and device-TLB invalidations reach the endpoints’ ATCs; ${ATS}.`,
  },
  ir: { spec: 'IR', status: M, note: 'From `interruptRemapping`: IRTA, the IEC and interrupt remapping.' },
  eim: {
    spec: 'EIM',
    status: M,
    note: 'From `extendedInterruptMode`: IRTA.EIME (x2APIC destinations) and the upper event address registers.',
  },
  pt: {
    spec: 'PT',
    status: M,
    note: 'From `passThrough`: context TT 10b and PGTT 100b; without it they are 0x3 and 0x5B.',
  },
  sc: {
    spec: 'SC',
    status: C,
    note: `From \`snoopControl\`: PGSNP is reserved without it (0x5A); snoop attributes have no effect, ${NO_SNOOP}.`,
  },
  iro: { spec: 'IRO', status: M, note: '0x0F: IVA at 0xF0 and IOTLB at 0xF8.' },
  mhmv: { spec: 'MHMV', status: M, note: '15 with interrupt remapping (any IM is taken), else 0.' },
  mts: { spec: 'MTS', status: N, note: READS_0(`no memory type support: ${NO_MEMORY_TYPES}`) },
  nest: { spec: 'NEST', status: M, note: 'From `nesting`: PGTT 011b, first stage over second stage.' },
  prs: {
    spec: 'PRS',
    status: M,
    note: 'From `pageRequests`: the page request queue and page group responses.',
  },
  ers: {
    spec: 'ERS',
    status: M,
    note: 'From `executeRequests` (off by default; rev 5.10 requires 0): with it ERE and execute requests are honoured, without it an execute request is 0x5C.',
  },
  srs: {
    spec: 'SRS',
    status: M,
    note: 'From `supervisorRequests`: SRE is accepted; without it SRE is reserved (0x5A).',
  },
  nwfs: {
    spec: 'NWFS',
    status: M,
    note: 'Reads 0: NW in a Translation Request is honoured (a completion grants W only without NW).',
  },
  eafs: {
    spec: 'EAFS',
    status: M,
    note: 'Set in scalable mode with a first stage: the PASID entry’s EAFE makes first-stage walks set EA.',
  },
  pss: {
    spec: 'PSS',
    status: M,
    note: 'From `pasidBits` − 1. A PASID beyond it is not refused (0x89 is not modelled).',
  },
  pasid: {
    spec: 'PASID',
    status: M,
    note: 'From `pasidBits` > 0: requests with PASID, PASIDE, PP in fault records.',
  },
  dit: {
    spec: 'DIT',
    status: N,
    note: READS_0('no device-TLB invalidation throttling (MIP and PFSID have no effect)'),
  },
  pds: {
    spec: 'PDS',
    status: M,
    note: 'From `pageRequestDrain`: PD is accepted (page requests are always written before a wait completes); without it PD is IQEI 4.',
  },
  smts: {
    spec: 'SMTS',
    status: M,
    note: 'From `scalableMode`: RTADDR.TTM 01b and the scalable-mode structures.',
  },
  vcs: { spec: 'VCS', status: N, note: READS_0('no virtual command interface') },
  slads: {
    spec: 'SSADS',
    status: M,
    note: 'From `secondStageAccessDirty`: SSADE sets A/D in second-stage entries; without it SSADE is 0x5A.',
  },
  slts: { spec: 'SSTS', status: M, note: 'From `secondStage`: PGTT 010b.' },
  flts: { spec: 'FSTS', status: M, note: 'From `firstStage`: PGTT 001b.' },
  smpwcs: { spec: 'SMPWCS', status: N, note: `From \`scalableWalkCoherency\`; ${NO_SNOOP}.` },
  rps: {
    spec: 'RPS',
    status: M,
    note: 'Set in scalable mode: the context entry’s RID_PASID is the PASID of requests without one.',
  },
  pms: { spec: 'PMS', status: N, note: READS_0('no performance monitoring') },
  adms: { spec: 'ADMS', status: M, note: 'From `abortDmaMode`: RTADDR.TTM 11b blocks every request.' },
  rprivs: {
    spec: 'RPRIVS',
    status: M,
    note: 'Set in scalable mode: the context entry’s RID_PRIV is the privilege of requests without PASID.',
  },
};

const DEP = READS_0('deprecated');
export const ECAP_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'DEP', msb: 5, lsb: 5, status: N, note: DEP },
  {
    spec: 'DEP',
    msb: 24,
    lsb: 24,
    status: N,
    note: READS_0('deprecated (extended mode translation before)'),
  },
  { spec: 'DEP', msb: 28, lsb: 28, status: N, note: DEP },
  { spec: 'TDXCS', msb: 50, lsb: 50, status: N, note: READS_0('no TDX Connect extensions') },
  { spec: 'HPTS', msb: 55, lsb: 55, status: N, note: READS_0('no host permission tables') },
  { spec: 'PTRS', msb: 56, lsb: 56, status: N, note: READS_0(`no PASID in Translated requests; ${ATS}`) },
  { spec: 'SSIRWS', msb: 57, lsb: 57, status: N, note: READS_0('no second-stage I/O read/write bits') },
  {
    spec: 'SMS',
    msb: 58,
    lsb: 58,
    status: N,
    note: 'Reads 0: a Stop Marker the queue cannot take is dropped without a response (undefined with SMS = 0).',
  },
  { spec: 'HPT1GPS', msb: 59, lsb: 59, status: N, note: READS_0('no host permission tables') },
  { spec: 'RDTS', msb: 60, lsb: 60, status: N, note: READS_0('no RDT configuration') },
  { spec: 'EIMER', msb: 61, lsb: 61, status: N, note: READS_0('xAPIC mode is allowed (0x2A never occurs)') },
  {
    spec: 'IRREQ',
    msb: 62,
    lsb: 62,
    status: N,
    note: READS_0('with remapping off, interrupts pass in compatibility format (0x2B never occurs)'),
  },
];

// ---------------------------------------------------------------------------------------------------------
// Root and context entries (§9.1–§9.4), fetched, checked and cached by the configuration fetch.

const FPD =
  'Qualified faults through this entry are not recorded (evaluated whatever P says); unqualified ones are.';

export const LEGACY_ROOT_COVERAGE: Readonly<Record<keyof LegacyRootEntry, FieldCoverage>> = {
  p: { spec: 'P', status: M, note: 'P = 0: 0x1.' },
  ctp: {
    spec: 'CTP',
    status: M,
    note: 'The bus’s context table; at or above 2^HAW is 0xA, a read that aborts 0x9.',
  },
};

export const SCALABLE_ROOT_COVERAGE: Readonly<Record<keyof ScalableRootEntry, FieldCoverage>> = {
  lp: { spec: 'LP', status: M, note: 'Devfn 0–127: LP = 0 is 0x39.' },
  lctp: {
    spec: 'LCTP',
    status: M,
    note: 'Lower context table (devfn 0–127); at or above 2^HAW is 0x3A, a read that aborts 0x40.',
  },
  up: { spec: 'UP', status: M, note: 'Devfn 128–255: UP = 0 is 0x39.' },
  uctp: { spec: 'UCTP', status: M, note: 'Upper context table (devfn 128–255); at or above 2^HAW is 0x3A.' },
};

export const LEGACY_CONTEXT_COVERAGE: Readonly<Record<keyof LegacyContextEntry, FieldCoverage>> = {
  p: { spec: 'P', status: M, note: 'P = 0: 0x2.' },
  fpd: { spec: 'FPD', status: M, note: FPD },
  tt: {
    spec: 'TT',
    status: M,
    note: `00b translates through the second stage, 10b passes through (with ECAP.PT); 01b (with ECAP.DT) translates as 00b and also answers Translation Requests (any other TT refuses them with 0xD); ${ATS}; 11b or a type the unit lacks is 0x3.`,
  },
  slptptr: {
    spec: 'SSPTPTR',
    status: M,
    note: 'The second-stage table; at or above 2^HAW is 0xB; ignored with pass-through.',
  },
  aw: {
    spec: 'AW',
    status: M,
    note: 'The AGAW (3-, 4- or 5-level); one CAP.SAGAW lacks is 0x3; inputs above it are 0x4.',
  },
  avail: { spec: 'IGN', status: M, note: 'Ignored, as the spec says.' },
  did: {
    spec: 'DID',
    status: M,
    note: 'Tags the context cache and IOTLB entries; above CAP.ND’s width is 0xB.',
  },
};

export const SCALABLE_CONTEXT_COVERAGE: Readonly<Record<keyof ScalableContextEntry, FieldCoverage>> = {
  p: { spec: 'P', status: M, note: 'P = 0: 0x41.' },
  fpd: { spec: 'FPD', status: M, note: FPD },
  dte: {
    spec: 'DTE',
    status: M,
    note: `Translation Requests need it (0x44 without); reserved without ECAP.DT (0x42); ${ATS}. Deviation: DTE = 0 with PRE = 1 is not 0x43.`,
  },
  paside: {
    spec: 'PASIDE',
    status: M,
    note: 'A request with PASID through PASIDE = 0 is 0x45; reserved without ECAP.PASID (0x42).',
  },
  pre: {
    spec: 'PRE',
    status: M,
    note: 'A page request through PRE = 0 is 0x47 (answered Invalid Request with LPIG); reserved without ECAP.PRS (0x42).',
  },
  pdts: {
    spec: 'PDTS',
    status: M,
    note: '2^(PDTS+7) directory entries: a PASID beyond them is 0x46. Deviation: a RID_PASID beyond them is 0x48 (rev 5.10: 0x43).',
  },
  pasidDirPtr: {
    spec: 'PASIDDIRPTR',
    status: M,
    note: 'The PASID directory; at or above 2^HAW is 0x42, a read that aborts 0x50.',
  },
  ridPasid: {
    spec: 'RID_PASID',
    status: M,
    note: 'The PASID of requests without one (ECAP.RPS).',
  },
  ridPriv: {
    spec: 'RID_PRIV',
    status: M,
    note: 'The privilege of requests without PASID (ECAP.RPRIVS).',
  },
};

const HPT_RESERVED = 'Reserved(0) without ECAP.HPTS; set is 0x42, as bits 8:5 are reserved-checked.';
export const SCALABLE_CONTEXT_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'HPTE', msb: 5, lsb: 5, status: C, note: HPT_RESERVED },
  { spec: 'EPTR', msb: 6, lsb: 6, status: C, note: 'Reserved(0) without ECAP.PTRS; set is 0x42.' },
];

// ---------------------------------------------------------------------------------------------------------
// PASID directory and PASID table entries (§9.5, §9.6).

export const PASID_DIR_COVERAGE: Readonly<Record<keyof PasidDirEntry, FieldCoverage>> = {
  p: { spec: 'P', status: M, note: 'P = 0: 0x51.' },
  fpd: { spec: 'FPD', status: M, note: FPD },
  pasidTablePtr: {
    spec: 'SMPTBLPTR',
    status: M,
    note: 'The PASID table; at or above 2^HAW is 0x52, a read that aborts 0x58.',
  },
};

const IGNORED_515 = (older: string) => `Rev 5.10: ${older}; decoded, unused and not reserved-checked.`;

export const PASID_ENTRY_COVERAGE: Readonly<Record<keyof PasidEntry, FieldCoverage>> = {
  p: { spec: 'P', status: M, note: 'P = 0: 0x59.' },
  fpd: { spec: 'FPD', status: M, note: FPD },
  aw: {
    spec: 'AW',
    status: M,
    note: 'Second-stage AGAW for PGTT 010b and 011b; one CAP.SAGAW lacks is 0x5B.',
  },
  ssee: {
    spec: 'SSEE',
    status: N,
    note: IGNORED_515('bit 5 is Reserved (second-stage execute enable before 4.0)'),
  },
  pgtt: {
    spec: 'PGTT',
    status: M,
    note: 'First stage, second stage, nested or pass-through; reserved values or a type the unit lacks are 0x5B.',
  },
  ssade: {
    spec: 'SSADE',
    status: M,
    note: 'Second-stage A/D updates (the IOTLB caches read leaves clean); reserved without SSADS (0x5A).',
  },
  ssptptr: {
    spec: 'SSPTPTR',
    status: M,
    note: 'The second-stage table; a read of its first entry that aborts is 0x7B.',
  },
  did: {
    spec: 'DID',
    status: M,
    note: 'Tags the PASID cache and IOTLB entries; above CAP.ND’s width is 0x5A.',
  },
  pwsnp: { spec: 'PWSNP', status: N, note: `No effect: ${NO_SNOOP}; not reserved-checked without SMPWCS.` },
  pgsnp: {
    spec: 'PGSNP',
    status: C,
    note: `Reserved without ECAP.SC (0x5A); otherwise no effect: ${NO_SNOOP}.`,
  },
  cd: { spec: 'CD', status: N, note: `Reserved(0) with ECAP.MTS = 0, not checked; ${NO_MEMORY_TYPES}.` },
  emte: { spec: 'EMTE', status: N, note: `Reserved(0) with ECAP.MTS = 0, not checked; ${NO_MEMORY_TYPES}.` },
  emt: { spec: 'EMT', status: N, note: IGNORED_515('bits 95:91 are Reserved (EMT in earlier revisions)') },
  pwt: { spec: 'PWT', status: N, note: IGNORED_515('bits 95:91 are Reserved (PWT in earlier revisions)') },
  pcd: { spec: 'PCD', status: N, note: IGNORED_515('bits 95:91 are Reserved (PCD in earlier revisions)') },
  pat: { spec: 'PAT', status: N, note: `Reserved(0) with ECAP.MTS = 0, not checked; ${NO_MEMORY_TYPES}.` },
  sre: {
    spec: 'SRE',
    status: M,
    note: 'A supervisor request (PR, or RID_PRIV without PASID) through SRE = 0 is 0x5D; reserved without SRS (0x5A).',
  },
  ere: {
    spec: 'ERE',
    status: M,
    note: 'Reserved without ECAP.ERS (0x5A), so execute requests are 0x5C (rev 5.10 marks bit 129 Reserved); with ERS, ERE as earlier revisions define it.',
  },
  flpm: {
    spec: 'FSPM',
    status: M,
    note: '4- or 5-level first stage (5-level needs CAP.FS5LP); 10b, 11b are 0x5B.',
  },
  wpe: { spec: 'WPE', status: M, note: 'Supervisor writes honour read-only first-stage pages.' },
  nxe: { spec: 'IGN', status: M, note: 'Bit 133 (NXE in earlier revisions): ignored, as rev 5.10 says.' },
  smep: { spec: 'IGN', status: M, note: 'Bit 134 (SMEP in earlier revisions): ignored, as rev 5.10 says.' },
  eafe: {
    spec: 'EAFE',
    status: M,
    note: 'First-stage walks set EA (bit 10) where they set A (ECAP.EAFS).',
  },
  fsptptr: {
    spec: 'FSPTPTR',
    status: M,
    note: 'The first-stage table (a GPA when nested); a read of its first entry that aborts is 0x73.',
  },
};

const HPT_FIELD = 'Reserved(0) without ECAP.HPTS; bits 511:192 are neither decoded nor checked.';
export const PASID_ENTRY_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'HPTSZ', msb: 257, lsb: 256, status: N, note: HPT_FIELD },
  { spec: 'HPTPFD', msb: 258, lsb: 258, status: N, note: HPT_FIELD },
  { spec: 'HPTPTR (bits HAW+255:268)', msb: 319, lsb: 268, status: N, note: HPT_FIELD },
  { spec: 'HPTDID', msb: 335, lsb: 320, status: N, note: HPT_FIELD },
];

// ---------------------------------------------------------------------------------------------------------
// Invalidation descriptors (§6.5.2, §7.6.1), performed by the invalidation queue.

const WIDE_ONLY =
  '256-bit only (a 128-bit queue is IQEI 3). Deviation: also accepted in legacy mode with a 256-bit queue (Table 26 allows 1h–5h there)';

export const INV_DESCRIPTOR_COVERAGE: Readonly<Record<InvTypeName, FieldCoverage>> = {
  CONTEXT_CACHE: {
    spec: 'cc_inv_dsc',
    status: M,
    note: 'Drops context-cache entries; a reserved G is IQEI 4.',
  },
  IOTLB: {
    spec: 'iotlb_inv_dsc',
    status: M,
    note: 'Global: everything. Domain-selective: every translation and paging-structure entry of the DID. Page-selective (Table 23): second-stage translations and, unless IH, second-stage paging-structure entries in the range; every first-stage and nested translation and first-stage paging-structure entry of the DID whatever its address. Deviation: page-selective without CAP.PSI is performed domain-selective (rev 5.10: an invalid descriptor).',
  },
  DEVICE_TLB: {
    spec: 'dev_tlb_inv_dsc',
    status: M,
    note: 'An ATS Invalidate Request for requests without PASID to the endpoint’s ATC, completed at once; needs ECAP.DT (else IQEI 3).',
  },
  IEC: { spec: 'iec_inv_dsc', status: M, note: 'Drops IEC entries; needs ECAP.IR (else IQEI 3).' },
  WAIT: {
    spec: 'inv_wait_dsc',
    status: M,
    note: 'Completes when reached (every earlier descriptor has): SW writes the status data, IF sets ICS.IWC and raises the completion event.',
  },
  PASID_IOTLB: {
    spec: 'p_iotlb_inv_dsc',
    status: M,
    note: `Drops first-stage and nested entries of (DID, PASID) and their paging-structure entries; ${WIDE_ONLY}; and PASID-selective keeps the second-stage-only entries the PASID used (cached without a PASID) and first-stage leaves cached with G = 1 (rev 5.10 ignores G).`,
  },
  PASID_CACHE: { spec: 'pc_inv_dsc', status: M, note: `Drops PASID-cache entries; ${WIDE_ONLY}.` },
  PASID_DEVICE_TLB: {
    spec: 'p_dev_tlb_inv_dsc',
    status: M,
    note: `An ATS Invalidate Request with PASID (or all PASIDs with GI) to the endpoint; needs ECAP.DT; ${WIDE_ONLY}.`,
  },
  PAGE_GROUP_RESPONSE: {
    spec: 'page_grp_resp_dsc',
    status: M,
    note: `Sends the Page Request Group Response to the endpoint; needs ECAP.PRS (else IQEI 3); ${WIDE_ONLY}.`,
  },
};

export const SPEC_ONLY_INV_DESCRIPTORS: readonly SpecOnlyCode[] = [
  {
    name: 'hpt_inv_desc',
    code: 0xa,
    status: C,
    note: 'An invalid descriptor type (IQEI 3), as for every unit without host permission tables (ECAP.HPTS = 0).',
  },
];

const G_CONTEXT =
  'Global, domain or device (01b–11b); in scalable mode domain-selective acts as global; 00b is IQEI 4.';
const DID_IGNORED = 'Bits above CAP.ND’s width are ignored.';
const NO_THROTTLE =
  'Not reserved-checked (DIT = 0 makes it reserved); no effect, endpoints take invalidations at once.';
const AM = (what: string) =>
  `2^AM pages at ADDR (its AM low page bits ignored); above CAP.MAMV is IQEI 4${what}.`;

export const INV_DESCRIPTOR_FIELD_COVERAGE: {
  readonly [K in InvTypeName]: Readonly<Record<InvDescriptorFieldName<K>, FieldCoverage>>;
} = {
  CONTEXT_CACHE: {
    granularity: { spec: 'G', status: M, note: G_CONTEXT },
    did: { spec: 'DID', status: M, note: `${DID_IGNORED} Ignored in scalable mode.` },
    sid: { spec: 'SID', status: M, note: 'Device-selective: the source ID.' },
    fm: {
      spec: 'FM',
      status: M,
      note: 'Device-selective: function-number bits 2, 2:1 or 2:0 of SID ignored.',
    },
  },
  IOTLB: {
    granularity: { spec: 'G', status: M, note: 'Global, domain or page-selective (01b–11b); 00b is IQEI 4.' },
    dw: {
      spec: 'DW',
      status: M,
      note: 'Ignored, as rev 5.10 says for VER 2 and up: nothing is queued to drain.',
    },
    dr: { spec: 'DR', status: M, note: 'Ignored, as rev 5.10 says for VER 2 and up.' },
    did: { spec: 'DID', status: M, note: DID_IGNORED },
    am: { spec: 'AM', status: M, note: AM('') },
    ih: { spec: 'IH', status: M, note: 'IH = 1 keeps the second-stage paging-structure entries.' },
    addr: { spec: 'ADDR', status: M, note: 'Page-selective: the second-stage input address.' },
  },
  DEVICE_TLB: {
    pfsid: { spec: 'PFSID', status: N, note: NO_THROTTLE },
    qdep: { spec: 'MIP', status: N, note: NO_THROTTLE },
    sid: { spec: 'SID', status: M, note: 'The endpoint.' },
    size: { spec: 'S', status: M, note: 'S = 1: the range is encoded in ADDR, as ATS defines it.' },
    addr: { spec: 'ADDR', status: M, note: 'The input address (and, with S, the range).' },
  },
  IEC: {
    granularity: { spec: 'G', status: M, note: 'Global (0) or index-selective (1).' },
    im: { spec: 'IM', status: M, note: '2^IM entries from IIDX; any value is taken (MHMV = 15).' },
    iidx: { spec: 'IIDX', status: M, note: 'Index-selective: the interrupt index.' },
  },
  WAIT: {
    iflag: {
      spec: 'IF',
      status: M,
      note: 'Sets ICS.IWC and raises the completion event unless IWC was already set.',
    },
    sw: { spec: 'SW', status: M, note: 'Writes the status data; a write that aborts is lost.' },
    fn: { spec: 'FN', status: M, note: 'Met by construction: descriptors complete in order.' },
    pd: {
      spec: 'PD',
      status: M,
      note: 'Met by construction: page requests are written as they arrive; reserved without ECAP.PDS (IQEI 4).',
    },
    statusData: { spec: 'Status Data', status: M, note: 'The 32-bit value SW writes.' },
    statusAddr: {
      spec: 'Status Address',
      status: M,
      note: 'Where SW writes. Deviation: bits at or above HAW are used, not ignored as §6.5.2.9 says.',
    },
  },
  PASID_IOTLB: {
    granularity: {
      spec: 'G',
      status: M,
      note: 'PASID-selective (10b) or page-selective within PASID (11b); 00b, 01b are IQEI 4.',
    },
    did: { spec: 'DID', status: M, note: DID_IGNORED },
    pasid: { spec: 'PASID', status: M, note: 'The target PASID.' },
    am: {
      spec: 'AM',
      status: M,
      note: AM(
        '. Deviation: rev 5.10 requires any AM here (MAMV applies to the IOTLB descriptor and IVA only)',
      ),
    },
    ih: { spec: 'IH', status: M, note: 'IH = 1 keeps the first-stage paging-structure entries.' },
    addr: { spec: 'ADDR', status: M, note: 'Page-selective: the first-stage input address.' },
  },
  PASID_CACHE: {
    granularity: {
      spec: 'G',
      status: M,
      note: 'Domain (00b), PASID within domain (01b) or global (11b); 10b is IQEI 4.',
    },
    did: { spec: 'DID', status: M, note: DID_IGNORED },
    pasid: { spec: 'PASID', status: M, note: 'PASID-selective: the target PASID.' },
  },
  PASID_DEVICE_TLB: {
    qdep: { spec: 'MIP', status: N, note: NO_THROTTLE },
    pfsid: { spec: 'PFSID', status: N, note: NO_THROTTLE },
    sid: { spec: 'SID', status: M, note: 'The endpoint.' },
    pasid: { spec: 'PASID', status: M, note: 'The target PASID, ignored with GI.' },
    granularity: { spec: 'GI', status: M, note: 'Global Invalidate: every PASID of the endpoint.' },
    size: { spec: 'S', status: M, note: 'S = 1: the range is encoded in ADDR.' },
    addr: { spec: 'ADDR', status: M, note: 'The input address (and, with S, the range).' },
  },
  PAGE_GROUP_RESPONSE: {
    pasidPresent: { spec: 'PP', status: M, note: 'The response carries PASID.' },
    privateDataPresent: {
      spec: 'PDP',
      status: N,
      note: 'Rev 5.10: bit 5 is reserved (private data present before); not reserved-checked, no effect.',
    },
    respCode: {
      spec: 'RC',
      status: M,
      note: 'Success (0), Invalid Request (1) or Response Failure (0xF); other codes are IQEI 4.',
    },
    rid: { spec: 'RID', status: M, note: 'The endpoint.' },
    pasid: { spec: 'PASID', status: M, note: 'With PP: the response’s PASID.' },
    lpig: { spec: 'IGN', status: M, note: 'Bit 66 (LPIG in earlier revisions): ignored, as rev 5.10 says.' },
    prgIndex: { spec: 'PRGI', status: M, note: 'The page request group answered.' },
    privateData: {
      spec: 'Private Data',
      status: N,
      note: 'Rev 5.10: bits 255:128 are reserved (private data before); not reserved-checked, not forwarded.',
    },
  },
};

// ---------------------------------------------------------------------------------------------------------
// Page request descriptor (§7.4.1.1), written by the page request queue.

export const PAGE_REQUEST_COVERAGE: Readonly<Record<keyof PageRequest, FieldCoverage>> = {
  type: { spec: 'Type', status: M, note: '01h.' },
  pasidPresent: { spec: 'PP', status: M, note: 'The request carried a PASID.' },
  privateDataPresent: {
    spec: 'PDP',
    status: N,
    note: 'Rev 5.10: bit 9 is RsvdZ (private data present before); the model writes 0.',
  },
  rid: { spec: 'RID', status: M, note: 'The requester ID.' },
  pasid: { spec: 'PASID', status: M, note: 'With PP: the request’s PASID, else 0.' },
  exe: { spec: 'EXR', status: M, note: 'Execute requested, with a PASID.' },
  priv: { spec: 'PMR', status: M, note: 'Supervisor privilege requested, with a PASID.' },
  read: { spec: 'RDR', status: M, note: 'Read access requested.' },
  write: { spec: 'WRR', status: M, note: 'Write access requested.' },
  lpig: {
    spec: 'LPIG',
    status: M,
    note: 'Last request of the group: the device waits for a page group response.',
  },
  prgIndex: { spec: 'PRGI', status: M, note: 'The page request group.' },
  addr: { spec: 'ADDR', status: M, note: 'The page address.' },
  privateData: {
    spec: 'Private Data',
    status: N,
    note: 'Rev 5.10: bits 255:128 are RsvdZ (private data before); the model writes 0.',
  },
};

// ---------------------------------------------------------------------------------------------------------
// Interrupt remapping table entries (§9.9 remapped, §9.10 posted), fetched by interrupt remapping.

const IRTE_SHARED = {
  present: { spec: 'P', status: M, note: 'P = 0: 0x22; only usable entries enter the IEC.' },
  fpd: {
    spec: 'FPD',
    status: M,
    note: 'Faults found once the entry is read (0x22, 0x24, 0x26, 0x27, 0x28) are not recorded.',
  },
  avail: { spec: 'AVAIL', status: M, note: 'Ignored, as the spec says.' },
  sid: { spec: 'SID', status: M, note: 'The requester (SVT 01b) or the bus range (SVT 10b) allowed.' },
  sq: { spec: 'SQ', status: M, note: 'SVT 01b: function-number bits 2, 2:1 or 2:0 ignored.' },
  svt: {
    spec: 'SVT',
    status: M,
    note: 'Source validation: none, requester, or bus range; a failure is 0x26, 11b is 0x24.',
  },
} as const satisfies Readonly<Record<string, FieldCoverage>>;

export const REMAPPED_IRTE_COVERAGE: Readonly<Record<IrteFieldName<RemappedIrte>, FieldCoverage>> = {
  ...IRTE_SHARED,
  mode: { spec: 'IM', status: M, note: 'Selects the format: 0 remapped (this table), 1 posted.' },
  vector: { spec: 'V', status: M, note: 'The vector delivered.' },
  dm: { spec: 'DM', status: M, note: 'Physical or logical destination.' },
  rh: { spec: 'RH', status: M, note: 'The redirection hint, passed to the interrupt controller.' },
  tm: { spec: 'TM', status: M, note: 'Edge or level.' },
  dlm: {
    spec: 'DLM',
    status: M,
    note: 'Fixed, lowest priority, SMI, NMI, INIT or ExtINT; the undefined encodings 011b and 110b are 0x24.',
  },
  dst: {
    spec: 'DST',
    status: M,
    note: 'x2APIC (IRTA.EIME): 32 bits; xAPIC: the APIC ID in bits 47:40, and bits 39:32 and 63:48 set are 0x24.',
  },
};

export const POSTED_IRTE_COVERAGE: Readonly<Record<IrteFieldName<PostedIrte>, FieldCoverage>> = {
  ...IRTE_SHARED,
  mode: {
    spec: 'IM',
    status: M,
    note: 'Selects the format: 1 posted (this table), needs CAP.PI (else 0x24).',
  },
  vector: { spec: 'VV', status: M, note: 'The PIR bit set in the posted-interrupt descriptor.' },
  urg: { spec: 'URG', status: M, note: 'Notify even when the descriptor suppresses notifications (SN).' },
  pdaLow: {
    spec: 'PDAL',
    status: M,
    note: 'Posted-interrupt descriptor address bits 31:6; a read that aborts is 0x27.',
  },
  pdaHigh: {
    spec: 'PDAH',
    status: M,
    note: 'Posted-interrupt descriptor address bits 63:32; bits at or above HAW are not reserved-checked.',
  },
};

// ---------------------------------------------------------------------------------------------------------
// Fault reasons (§7.1.3 Table 30, §5.1.4.1 Table 15).

const QUALIFIED_DEVIATION = (code: string) =>
  `Deviation: always recorded, whatever FPD says (Table 30 marks ${code} qualified).`;

export const FAULT_REASON_COVERAGE: Readonly<Record<keyof typeof FR, Coverage>> = {
  ROOT_NOT_PRESENT: { status: M, note: 'Legacy root entry P = 0 (LRT.2); unqualified.' },
  CONTEXT_NOT_PRESENT: { status: M, note: 'Legacy context entry P = 0 (LCT.2); qualified.' },
  CONTEXT_INVALID: {
    status: M,
    note: 'Context TT or AW the unit does not support (LCT.4.1, LCT.4.2); qualified. Deviation: a read of the first second-stage entry that aborts is 0x7, not 0x3 (LCT.4.3).',
  },
  ADDRESS_BEYOND_MGAW: {
    status: M,
    note: 'Legacy second-stage input above the AGAW or MGAW (LGN.1.1). Deviation: pass-through input above HAW is 0x83, not 0x4 (LGN.1.3).',
  },
  WRITE_DENIED: {
    status: M,
    note: 'Legacy write without write permission, or through a not-present entry (LGN.2).',
  },
  READ_DENIED: {
    status: M,
    note: 'Legacy read without read permission, or through a not-present entry (LGN.3).',
  },
  PAGING_ENTRY_ACCESS: { status: M, note: 'A legacy second-stage entry read that aborts (LSS.1).' },
  ROOT_TABLE_ACCESS: { status: M, note: 'A root entry read that aborts (LRT.1).' },
  CONTEXT_TABLE_ACCESS: { status: M, note: 'A context entry read that aborts (LCT.1).' },
  ROOT_RESERVED: {
    status: M,
    note: 'Reserved bits, or CTP at or above 2^HAW, in a present root entry (LRT.3).',
  },
  CONTEXT_RESERVED: {
    status: M,
    note: `Reserved bits, SSPTPTR at or above 2^HAW or a DID beyond CAP.ND in a present context entry (LCT.3). ${QUALIFIED_DEVIATION('Bh')}`,
  },
  PAGING_ENTRY_RESERVED: {
    status: M,
    note: 'Reserved bits (address bits at or above HAW included) in a legacy second-stage entry (LSS.2).',
  },
  TT_BLOCKED: {
    status: M,
    note: 'A Translation Request through a context entry with TT other than 01b (LCT.5).',
  },
  INTERRUPT_ADDRESS: {
    status: M,
    note: 'A legacy output address in 0xFEEx_xxxx (LGN.4). Deviation: not checked for pass-through.',
  },
  SM_ROOT_TABLE_ADDRESS: { status: M, note: 'TTM 10b, 11b without ADMS or 01b without SMTS (RTA.1).' },
  SM_TTM0_PASID_REQUEST: { status: M, note: 'A request with PASID in legacy mode (RTA.2).' },
  SM_TTM0_PAGE_REQUEST: {
    status: M,
    note: 'A page request in legacy mode, answered Invalid Request with LPIG (RTA.3). Also in abort-DMA mode, which Table 30 gives 0x33.',
  },
  SM_ROOT_ACCESS: { status: M, note: 'A scalable-mode root entry read that aborts (SRT.1).' },
  SM_ROOT_NOT_PRESENT: { status: M, note: 'LP or UP = 0 for the requester’s devfn (SRT.2).' },
  SM_ROOT_RESERVED: {
    status: M,
    note: 'Reserved bits or a pointer at or above 2^HAW in the used half (SRT.3).',
  },
  SM_CONTEXT_ACCESS: { status: M, note: 'A scalable-mode context entry read that aborts (SCT.1).' },
  SM_CONTEXT_NOT_PRESENT: { status: M, note: 'Scalable-mode context entry P = 0 (SCT.2); qualified.' },
  SM_CONTEXT_RESERVED: {
    status: M,
    note: `Reserved bits (DTE, PASIDE, PRE without their capability) or PASIDDIRPTR at or above 2^HAW (SCT.3). ${QUALIFIED_DEVIATION('42h')}`,
  },
  SM_CONTEXT_INVALID: {
    status: N,
    note: 'Never recorded. Deviation: DTE = 0 with PRE = 1 (SCT.4.1) is accepted and a RID_PASID beyond PDTS (SCT.4.2) is 0x48.',
  },
  SM_CONTEXT_DTE_CLEAR: {
    status: M,
    note: 'A Translation Request through a context entry with DTE = 0 (SCT.5).',
  },
  SM_CONTEXT_PASIDE_CLEAR: { status: M, note: 'A request with PASID through PASIDE = 0 (SCT.6).' },
  SM_CONTEXT_PASID_TOO_LARGE: { status: M, note: 'A PASID beyond the directory PDTS sizes (SCT.7).' },
  SM_CONTEXT_PRE_CLEAR: { status: M, note: 'A page request through PRE = 0 (SCT.8).' },
  SM_CONTEXT_RID_PASID: {
    status: N,
    note: 'Deviation: never recorded for SCT.9 (a request whose PASID equals RID_PASID); the model records 0x48 for a RID_PASID beyond PDTS, which is 0x43.',
  },
  SM_PASID_DIR_ACCESS: { status: M, note: 'A PASID directory entry read that aborts (SPD.1).' },
  SM_PASID_DIR_NOT_PRESENT: {
    status: M,
    note: 'PASID directory entry P = 0 (SPD.2). Not checked for page requests.',
  },
  SM_PASID_DIR_RESERVED: {
    status: M,
    note: `Reserved bits or SMPTBLPTR at or above 2^HAW (SPD.3). ${QUALIFIED_DEVIATION('52h')}`,
  },
  SM_PASID_ACCESS: { status: M, note: 'A PASID table entry read that aborts (SPT.1).' },
  SM_PASID_NOT_PRESENT: {
    status: M,
    note: 'PASID table entry P = 0 (SPT.2). Not checked for page requests.',
  },
  SM_PASID_RESERVED: {
    status: M,
    note: `Reserved bits, a DID beyond CAP.ND, or SSADE, PGSNP, SRE, ERE without their capability (SPT.3). ${QUALIFIED_DEVIATION('5Ah')}`,
  },
  SM_PASID_INVALID: {
    status: M,
    note: 'PGTT, AW or FSPM the unit does not support (SPT.4.1–SPT.4.3); a nested FSPTPTR above the AGAW (SPT.4.4) is not checked.',
  },
  SM_PASID_ERE_CLEAR: { status: M, note: 'An execute request without ERS, or through ERE = 0 (SPT.5).' },
  SM_PASID_SRE_CLEAR: { status: M, note: 'A supervisor request (PR, or RID_PRIV) through SRE = 0 (SPT.6).' },
  SM_FS_ACCESS: { status: M, note: 'A first-stage entry read that aborts, after the first (SFS.1).' },
  SM_FS_NOT_PRESENT: { status: M, note: 'A first-stage entry with P = 0 (SFS.2).' },
  SM_FS_RESERVED: { status: M, note: 'Reserved bits in a first-stage entry (SFS.3).' },
  SM_FS_ROOT_ACCESS: { status: M, note: 'The read of the first first-stage entry aborts (SFS.4).' },
  SM_NESTED_FS_BEYOND_MGAW: {
    status: M,
    note: 'Nested: a first-stage table address above the second stage’s AGAW (SFS.5); a first-stage output above it is 0x83.',
  },
  SM_NESTED_FS_ROOT_READ: {
    status: M,
    note: 'Nested: the second stage refuses the read of the first first-stage entry (SFS.6).',
  },
  SM_NESTED_FS_READ: {
    status: M,
    note: 'Nested: the second stage refuses a first-stage entry read (SFS.7).',
  },
  SM_NESTED_FS_WRITE: {
    status: M,
    note: 'Nested: the second stage refuses a first-stage A/D update (SFS.8).',
  },
  SM_SS_ACCESS: { status: M, note: 'A second-stage entry read that aborts, after the first (SSS.1).' },
  SM_SS_PERMISSION: { status: M, note: 'A second-stage entry with R = W = 0 (SSS.2).' },
  SM_SS_RESERVED: { status: M, note: 'Reserved bits in a second-stage entry (SSS.3).' },
  SM_SSPTPTR_INVALID: { status: M, note: 'The read of the first second-stage entry aborts (SSS.4).' },
  SM_SS_AD_NO_SNOOP: { status: N, note: `Never recorded (SSS.5): ${NO_SNOOP}.` },
  SM_NON_CANONICAL: {
    status: M,
    note: 'A first-stage input in the upper half of the paging mode’s width (SGN.1).',
  },
  SM_USER_SUPERVISOR: { status: M, note: 'A user request to a supervisor first-stage page (SGN.2).' },
  SM_EXECUTE_DENIED: {
    status: M,
    note: 'An execute request without execute permission; only with ERS (`executeRequests`). Rev 5.10 lists no 82h.',
  },
  SM_ADDRESS_BEYOND_MAX: {
    status: M,
    note: 'Pass-through input above HAW (SGN.4.2). Deviation: also for a second-stage input above the AGAW or MGAW (SGN.5 gives 84h), legacy pass-through (LGN.1.3 gives 4h) and a request above HAW with translation disabled.',
  },
  SM_SS_OUTPUT_BEYOND_MAX: {
    status: N,
    note: 'Deviation: never recorded for SGN.5 (second-stage input above the AGAW, recorded as 0x83); the model records 0x84 for an SSPTPTR at or above 2^HAW, which rev 5.10 makes a reserved field of the PASID entry (0x5A).',
  },
  SM_WRITE_DENIED: { status: M, note: 'A write without write permission at either stage (SGN.6).' },
  SM_READ_DENIED: { status: M, note: 'A read without read permission at the second stage (SGN.7).' },
  SM_INTERRUPT_ADDRESS: {
    status: M,
    note: 'An output address in 0xFEEx_xxxx (SGN.8.1). Deviation: not checked for pass-through.',
  },
  SM_FS_AD_NO_SNOOP: { status: N, note: `Never recorded (SFS.9): ${NO_SNOOP}.` },
  SM_FS_AD_UPDATE_FAILED: {
    status: N,
    note: 'Never recorded (SFS.10): a first-stage A/D write-back that aborts is an entry access fault (0x70, 0x73).',
  },
};

export const SPEC_ONLY_FAULT_REASONS: readonly SpecOnlyCode[] = [
  {
    name: 'RTA.4: a request in abort-DMA mode',
    code: 0x33,
    status: N,
    note: 'Deviation: abort-DMA mode blocks requests without recording a fault; Table 30 lists 33h for them.',
  },
  {
    name: 'RTA.5: ER set, VER major 8 and up',
    code: 0x34,
    status: N,
    note: 'Never recorded: execute requests are 0x5C whatever VER says (the default VER is 6.0).',
  },
  {
    name: 'SCT.10: Translated request with PASID through EPTR = 0',
    code: 0x49,
    status: N,
    note: `Never recorded: ${ATS}.`,
  },
  {
    name: 'SPT.9: Translated request beyond the HPT size',
    code: 0x60,
    status: N,
    note: 'Never recorded: no host permission tables.',
  },
  {
    name: 'SSS.6: second-stage A/D update failed',
    code: 0x7d,
    status: N,
    note: 'Never recorded: a second-stage A/D write-back that aborts is an entry access fault (0x78, 0x7B).',
  },
  {
    name: 'SGN.10: PASID beyond ECAP.PSS',
    code: 0x89,
    status: N,
    note: 'Never recorded: any 20-bit PASID is looked up in the PASID directory.',
  },
  ...(
    [
      [0xa0, 'HPT.1: HPT entry read failed'],
      [0xa1, 'HPT.2: reserved field in an HPT entry'],
      [0xa2, 'HPT.3: HPT root read failed'],
      [0xa3, 'HPT.4: zero-length read without a permission'],
      [0xa4, 'HPT.5: write denied by the HPT'],
      [0xa5, 'HPT.6: read denied by the HPT'],
    ] as const
  ).map(
    ([code, name]): SpecOnlyCode => ({
      name,
      code,
      status: N,
      note: 'Never recorded: no host permission tables (ECAP.HPTS = 0).',
    }),
  ),
];

export const IR_FAULT_REASON_COVERAGE: Readonly<Record<keyof typeof IR_FR, Coverage>> = {
  REQUEST_RESERVED: {
    status: M,
    note: 'Data bits 31:16 set in a remappable request; unqualified. Deviation: also with SHV clear, when Table 14 ignores them.',
  },
  INDEX_BEYOND_TABLE: {
    status: M,
    note: 'Handle (+ subhandle) at or beyond the 2^(S+1) entries SIRTP latched; unqualified. An IRTE address above HAW is not checked: the read is attempted (0x23 if it aborts).',
  },
  IRTE_NOT_PRESENT: { status: M, note: 'IRTE P = 0; qualified.' },
  IRTE_ACCESS_ERROR: { status: M, note: 'The IRTE read aborts; unqualified.' },
  IRTE_RESERVED: {
    status: M,
    note: 'Reserved bits, SVT 11b, xAPIC DST bits, an undefined DLM, or the posted format without CAP.PI; qualified.',
  },
  COMPAT_BLOCKED: {
    status: M,
    note: 'A compatibility-format interrupt with EIME set or CFIS clear; unqualified.',
  },
  SOURCE_INVALID: { status: M, note: 'The requester fails the IRTE’s SVT/SID/SQ check; qualified.' },
  PID_ACCESS_ERROR: { status: M, note: 'The posted-interrupt descriptor read aborts; qualified.' },
  PID_RESERVED: {
    status: M,
    note: 'Reserved control bits set in the posted-interrupt descriptor; qualified.',
  },
};

export const SPEC_ONLY_IR_FAULT_REASONS: readonly SpecOnlyCode[] = [
  {
    name: 'Invalid request to the interrupt address range',
    code: 0x29,
    status: N,
    note: 'Never recorded: interrupt requests reach the unit as an address and 32-bit data, so none is malformed.',
  },
  { name: 'EIME = 0 with EIMER', code: 0x2a, status: N, note: 'Never recorded: ECAP.EIMER reads 0.' },
  {
    name: 'MSI with remapping off and IRREQ',
    code: 0x2b,
    status: N,
    note: 'Never recorded: ECAP.IRREQ reads 0.',
  },
];
