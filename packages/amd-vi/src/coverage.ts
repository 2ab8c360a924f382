/**
 * What the AMD-Vi model does with every MMIO register, Control and Status bit, capability field, device
 * table entry field, GCR3 entry field, IRTE field, command, event and PPR log field the AMD I/O
 * Virtualization Technology (IOMMU) Specification (pub. 48882 rev 3.x) defines: a hand-written status per
 * item, keyed by the names the code uses (`REG`, the `CTRL_*` and `STATUS_*` bits of regs.ts,
 * `EFR_LAYOUT`/`EFR2_LAYOUT`/`CAPABILITY_HEADER_LAYOUT`, the DTE, GCR3 entry and IRTE codecs,
 * `COMMAND_OPCODE` and its decoded commands, `EVENT_CODE` and its decoded events, `EVENT_FLAG`, the PPR
 * log entry and `PPR_FLAG`), plus the spec's items the code has no name for. `coverage-doc.ts` renders it
 * into docs/vendors/amd-vi.md; `coverage.test.ts` fails when an item in the code has no status here or an
 * entry names something the code lacks, so the page cannot drift.
 *
 * Statuses, judged from the unit (`hw/amd-iommu.ts` and what it wires: the device table and translation
 * pipeline with its caches, the command buffer, the event and PPR logs, the unit's interrupts and interrupt
 * remapping), not from the codecs:
 * - `modelled`: the model does what the spec says — a register's reads, writes and effects; a field's
 *   effect on translation, caching, events or interrupts; a command's action; an event the unit logs for
 *   the spec's condition; a feature the unit implements as its capability reports it.
 * - `checked`: decoded and validated (an illegal value is ILLEGAL_DEV_TABLE_ENTRY, IO_PAGE_FAULT or
 *   ILLEGAL_COMMAND_ERROR as the spec says) but with no further behaviour.
 * - `not modelled`: no effect; the note says why (the feature is reported absent, so its bits are
 *   reserved; the bus has no snoop attributes or memory types; the hardware vIOMMU is not in mainline
 *   Linux; the GA log and posted interrupts are decoded only; no performance counters).
 * A note containing "Deviation:" says where the model departs from the spec, or where it made a choice no
 * source confirms. Sections are rev 3.x's as the sources cite them: §2.2.2 device table, §2.2.5 interrupt
 * remapping, §2.4 commands, §2.5 event log, §3.2 PCI capability, §3.4 MMIO registers.
 */
import type { Coverage, FieldCoverage, SpecOnlyCode, SpecOnlyField, SpecOnlyRegister } from '@iommukit/core';
import type { CapabilityHeaderFields, Efr2Fields, EfrFields } from './hw/capabilities.js';
import type { AmdCommand, COMMAND_OPCODE } from './hw/commands.js';
import type { DeviceTableEntry } from './hw/dte.js';
import type { AmdEvent, EVENT_CODE, EVENT_FLAG, PPR_FLAG, PprLogEntry } from './hw/events.js';
import type { Gcr3Entry } from './hw/gcr3.js';
import type { RemappedIrte, VapicIrte } from './hw/irte.js';
import type * as Regs from './hw/regs.js';
import type { RegName } from './hw/regs.js';

/** Control and Status bits by the names regs.ts gives them (`CTRL_HI_*` are bits 63:32). */
export type ControlBitName = Extract<keyof typeof Regs, `CTRL_${string}`>;
export type StatusBitName = Extract<keyof typeof Regs, `STATUS_${string}`>;

/** `INVALIDATE_IOMMU_PAGES` → `invalidate-iommu-pages`: how the decoded command and event kinds are named. */
type Kebab<S extends string> = S extends `${infer A}_${infer B}` ? `${A}-${Kebab<B>}` : S;
export type CommandName = keyof typeof COMMAND_OPCODE;
export type CommandOf<K extends CommandName> = Extract<AmdCommand, { op: Kebab<Lowercase<K>> }>;
export type CommandFieldName<K extends CommandName> = Exclude<keyof CommandOf<K>, 'op'>;
export type EventName = keyof typeof EVENT_CODE;
export type EventOf<K extends EventName> = Extract<AmdEvent, { kind: Kebab<Lowercase<K>> }>;
export type EventFieldName<K extends EventName> = Exclude<keyof EventOf<K>, 'kind'>;
/** IRTE fields: what the decoders return but the reserved-bit summary (and GuestMode of the 32-bit format). */
export type Irte32FieldName = Exclude<keyof RemappedIrte, 'reserved' | 'guestMode'>;
export type IrteFieldName<E> = Exclude<keyof E, 'reserved'>;

const M = 'modelled';
const C = 'checked';
const N = 'not modelled';

const notPresent = (why: string) => `Not present: ${why}; the offset reads 0 and ignores writes.`;
const READS_0 = (what: string) => `Reads 0: ${what}.`;
const NO_TR_EVENTS =
  'a Translation Request’s fault is only its completion’s refusal, never an event (VirtualBox, citing §2.1.3.2)';
const NO_SNOOP = 'the bus has no caches to snoop';
const NO_MEMORY_TYPES = 'the bus carries no memory types';
const NO_VIOMMU = 'the hardware vIOMMU is not modelled (it is not in mainline Linux)';
const NO_GA_LOG = 'the GA log is not modelled: posted interrupts are decoded only';
const HT = 'a HyperTransport attribute: the bus has no HyperTransport link';

// ---------------------------------------------------------------------------------------------------------
// MMIO registers (§3.4).

const LOG_BASE = (log: string, len: string, run: string) =>
  `Base 51:12 and ${len} 59:56 (2^${len} 16-byte entries, 8 to 15) locate the ${log}; an accepted write resets head and tail; ignored while ${run}, and a high half with ${len} below 8 is ignored.`;

export const REGISTER_COVERAGE: Readonly<Record<RegName, Coverage>> = {
  DEV_TBL_BASE: {
    status: M,
    note: 'Base 51:12 and Size 8:0 (4 KiB pages − 1) locate the device table, read on every DTE-cache miss; a DeviceID beyond Size is IO_PAGE_FAULT without DomainID or address, never suppressed (VirtualBox).',
  },
  CMD_BUF_BASE: {
    status: M,
    note: `${LOG_BASE('command buffer', 'ComLen', 'CmdBufRun')} Deviation: the low half of a 64-bit write whose ComLen is refused is kept (VirtualBox drops the whole write); reset ComLen 0 is a one-entry ring that never holds a command.`,
  },
  EVT_LOG_BASE: {
    status: M,
    note: `${LOG_BASE('event log', 'EventLen', 'EvtLogRun')} Deviation: with reset EventLen 0 (reserved), enabling the log does not start it; no source says what the unit does.`,
  },
  CONTROL: { status: M, note: 'Bits in the Control table below; bits of features the unit lacks read 0.' },
  EXCL_BASE: {
    status: M,
    note: 'ExEn, Allow and base 51:12: requests without PASID inside the range pass untranslated, for every device (Allow) or those with DTE.EX. Deviation: the range is checked after the DTE fetch (EX needs it), so an unusable DTE still faults; no source places the check.',
  },
  EXCL_LIMIT: {
    status: M,
    note: 'Limit 51:12, inclusive; bits 11:0 read as ones (QEMU, VirtualBox).',
  },
  EFR: { status: M, note: 'Read-only, encoded from the options; every field is in the EFR table below.' },
  PPR_LOG_BASE: { status: M, note: LOG_BASE('PPR log', 'PPRLen', 'PPRLogRun') },
  HW_EVENT_UPPER: {
    status: N,
    note: 'Read-write storage; the unit never latches a hardware error here (VirtualBox latches each one).',
  },
  HW_EVENT_LOWER: {
    status: N,
    note: 'Read-write storage; the unit never latches a hardware error here (VirtualBox latches each one).',
  },
  HW_EVENT_STATUS: { status: N, note: 'HEV and HEO are W1C but never set: no hardware error is latched.' },
  GA_LOG_BASE: {
    status: N,
    note: `Read-write storage (base 51:12, length 59:56); ${NO_GA_LOG}.`,
  },
  GA_LOG_TAIL_ADDR: { status: N, note: `Read-write storage (bits 51:3); ${NO_GA_LOG}.` },
  MSI_CAP_HDR: {
    status: M,
    note: 'The MSI capability mirrored in MMIO: ID 05h and Msi64BitEn read-only; MsiEn sends the unit’s interrupts as one MSI shared by every source.',
  },
  MSI_ADDR_LOW: { status: M, note: 'Address bits 31:2 of the unit’s MSI.' },
  MSI_ADDR_HIGH: { status: M, note: 'Address bits 63:32 of the unit’s MSI.' },
  MSI_DATA: {
    status: M,
    note: 'Data bits 15:0 of the unit’s MSI, written with the unit’s own requester ID.',
  },
  XT_GEN_INTR: {
    status: M,
    note: 'With Control.IntCapXTEn: vector, 32-bit destination, destination and delivery mode of the event-log and completion-wait interrupts, handed to the platform’s interrupt controller, edge-triggered.',
  },
  XT_PPR_INTR: { status: M, note: 'As XT_GEN_INTR, for the PPR-log interrupt.' },
  XT_GA_INTR: { status: N, note: `Read-write storage; ${NO_GA_LOG}, so its interrupt never fires.` },
  EFR2: { status: M, note: 'Read-only, encoded from the options; every field is in the EFR2 table below.' },
  CMD_HEAD: {
    status: M,
    note: 'Bits 18:4; the unit passes each command performed and wraps at the ring’s end; writes while CmdBufRun or beyond the ring are ignored (VirtualBox). Deviation: after an error the head stays on the failing command (VirtualBox moves it to the tail, QEMU goes on).',
  },
  CMD_TAIL: {
    status: M,
    note: 'A write processes commands from the head, at most one ring’s worth per write; beyond the ring it is ignored.',
  },
  EVT_HEAD: {
    status: M,
    note: 'Software’s consumer pointer, bits 18:4; a value beyond the ring is ignored; head == tail is empty, one entry short of it is full.',
  },
  EVT_TAIL: {
    status: M,
    note: 'The unit writes each record at the tail and advances it; software may write it only while the log is stopped. Deviation: a record the bus aborts is lost and the tail stays (QEMU and VirtualBox advance it).',
  },
  STATUS: { status: M, note: 'Bits in the Status table below.' },
  PPR_HEAD: { status: M, note: 'As EVT_HEAD, for the PPR log.' },
  PPR_TAIL: { status: M, note: 'As EVT_TAIL, for the PPR log.' },
  GA_HEAD: {
    status: N,
    note: `Read-write storage; ${NO_GA_LOG}. Deviation: its writable bits 18:3 (8-byte entries) are inferred; no source confirms them.`,
  },
  GA_TAIL: { status: N, note: `As GA_HEAD; ${NO_GA_LOG}.` },
};

const NO_PCI_CONFIG =
  'the model has no PCI configuration space: the platform places the register window, not a BAR';

/** Registers of the spec's MMIO map (and the PCI capability block) that `REG` does not list. */
export const SPEC_ONLY_REGISTERS: readonly SpecOnlyRegister[] = [
  {
    name: 'SMI Filter 0–15',
    offset: '0x0060–0x00D8',
    status: N,
    note: notPresent('no SMI filter (EFR.SmiFSup = 0)'),
  },
  {
    name: 'PPR Log B Base Address',
    offset: '0x00F0',
    status: N,
    note: notPresent('no dual PPR log (EFR.DualPprLogSup = 0)'),
  },
  {
    name: 'Event Log B Base Address',
    offset: '0x00F8',
    status: N,
    note: notPresent('no dual event log (EFR.DualEventLogSup = 0)'),
  },
  {
    name: 'Device Table Segment 1–7 Base Address',
    offset: '0x0100–0x0130',
    status: N,
    note: notPresent('one device table segment (EFR.DevTblSegSup = 0)'),
  },
  {
    name: 'Device-Specific Feature, Control and Status Extension',
    offset: '0x0138–0x0148',
    status: N,
    note: notPresent('no device-specific extensions'),
  },
  {
    name: 'MSI Vector 0 and 1',
    offset: '0x0150, 0x0154',
    status: N,
    note: notPresent('every source shares the one MSI, so no message numbers are reported'),
  },
  {
    name: 'MSI Mapping Capability Header',
    offset: '0x0168',
    status: N,
    note: notPresent('no HyperTransport MSI mapping'),
  },
  {
    name: 'Performance Optimization Control',
    offset: '0x016C',
    status: N,
    note: notPresent('no performance optimization (EFR.PerfOptSup = 0)'),
  },
  {
    name: 'MARC Aperture 0–3 Base, Relocation and Length',
    offset: '0x0200–0x0258',
    status: N,
    note: notPresent('no memory address routing and control (EFR.MarcSup = 0)'),
  },
  {
    name: 'PPR Log B Head and Tail Pointers',
    offset: '0x2050, 0x2058',
    status: N,
    note: notPresent('no dual PPR log'),
  },
  {
    name: 'Event Log B Head and Tail Pointers',
    offset: '0x2070, 0x2078',
    status: N,
    note: notPresent('no dual event log'),
  },
  {
    name: 'PPR Log Auto Response',
    offset: '0x2080',
    status: N,
    note: notPresent('no PPR auto response (EFR.PprAutoRspSup = 0)'),
  },
  {
    name: 'PPR Log Overflow Early Indicator',
    offset: '0x2088',
    status: N,
    note: notPresent('no early overflow warning (EFR.PprOvrflwEarlySup = 0)'),
  },
  {
    name: 'PPR Log B Overflow Early Indicator',
    offset: '0x2090',
    status: N,
    note: notPresent('no dual PPR log'),
  },
  {
    name: 'Performance counter configuration and counter banks',
    offset: '0x4000 up',
    status: N,
    note: 'Beyond the 16 KiB register window: no performance counters (EFR.PCSup = 0).',
  },
  {
    name: 'Hardware vIOMMU guest MMIO and control registers',
    offset: 'their own apertures',
    status: N,
    note: `Not present: ${NO_VIOMMU}; EFR reports none.`,
  },
  {
    name: 'IOMMU Base Address Low and High (PCI capability)',
    offset: 'capability + 04h, + 08h',
    status: N,
    note: `Not present: ${NO_PCI_CONFIG}.`,
  },
  {
    name: 'IOMMU Range (PCI capability)',
    offset: 'capability + 0Ch',
    status: N,
    note: `Not present: ${NO_PCI_CONFIG}; the DeviceIDs a unit serves are the platform's choice.`,
  },
  {
    name: 'IOMMU Miscellaneous Information 0 and 1 (PCI capability)',
    offset: 'capability + 10h, + 14h',
    status: N,
    note: `Not present: ${NO_PCI_CONFIG} (CapExt reads 0).`,
  },
];

// ---------------------------------------------------------------------------------------------------------
// Control register (0018h) and Status register (2020h) bits (§3.4).

const LOG_ENABLE = (log: string, run: string) =>
  `With IommuEn, its rising edge starts the ${log} (${run}); clearing either stops it; after an overflow only a 0 → 1 write restarts it (Linux's recovery).`;
const HT_BIT = `Writable; ${HT}.`;

export const CONTROL_COVERAGE: Readonly<Record<ControlBitName, FieldCoverage>> = {
  CTRL_IOMMU_EN: {
    spec: 'IommuEn',
    status: M,
    note: 'Translation, interrupt remapping, the command buffer and the logs need it; clear, DMA and interrupts pass untranslated.',
  },
  CTRL_HT_TUN_EN: { spec: 'HtTunEn', status: N, note: HT_BIT },
  CTRL_EVENT_LOG_EN: { spec: 'EventLogEn', status: M, note: LOG_ENABLE('event log', 'EvtLogRun') },
  CTRL_EVENT_INT_EN: {
    spec: 'EventIntEn',
    status: M,
    note: 'Gates the event-log interrupt; EvtLogInt and EvtOverflow are set either way (VirtualBox).',
  },
  CTRL_COM_WAIT_INT_EN: {
    spec: 'ComWaitIntEn',
    status: M,
    note: 'Gates the completion-wait interrupt; ComWaitInt is set either way.',
  },
  CTRL_INV_TIMEOUT: {
    spec: 'InvTimeOut',
    status: N,
    note: 'Writable; endpoints take ATS invalidations at once, so no IOTLB_INV_TIMEOUT; 7 (reserved) is not refused.',
  },
  CTRL_PASS_PW: { spec: 'PassPW', status: N, note: HT_BIT },
  CTRL_RES_PASS_PW: { spec: 'ResPassPW', status: N, note: HT_BIT },
  CTRL_COHERENT: { spec: 'Coherent', status: N, note: HT_BIT },
  CTRL_ISOC: { spec: 'Isoc', status: N, note: HT_BIT },
  CTRL_CMD_BUF_EN: {
    spec: 'CmdBufEn',
    status: M,
    note: 'With IommuEn sets CmdBufRun and processes what is pending; only a change of either bit restarts a stopped buffer (VirtualBox); clearing stops at once and keeps the pointers.',
  },
  CTRL_PPR_LOG_EN: { spec: 'PprLogEn', status: M, note: LOG_ENABLE('PPR log', 'PPRLogRun') },
  CTRL_PPR_INT_EN: {
    spec: 'PprIntEn',
    status: M,
    note: 'Gates the PPR-log interrupt; PPRInt and PPROverflow are set either way.',
  },
  CTRL_PPR_EN: {
    spec: 'PPREn',
    status: M,
    note: 'Writable with EFR.PPRSup; page requests are logged only while it is set, else the unit answers them Response Failure.',
  },
  CTRL_GT_EN: {
    spec: 'GTEn',
    status: M,
    note: 'Writable with EFR.GTSup; guest translation (DTE.GV, GIoV) takes effect only while it is set.',
  },
  CTRL_GA_EN: {
    spec: 'GAEn',
    status: M,
    note: 'With EFR.GASup, 128-bit IRTEs (16-byte entries) instead of 32-bit ones. Deviation: a change of GAEn or GAMEn flushes the IRTE cache, the model’s choice.',
  },
  CTRL_GAM_EN: {
    spec: 'GAMEn',
    status: C,
    note: `Writable with EFR.GAMSup: 1 lets IRTE.GuestMode select the guest virtual APIC format, which is decoded and checked; ${NO_GA_LOG}.`,
  },
  CTRL_GA_LOG_EN: { spec: 'GALogEn', status: N, note: `Writable with EFR.GAMSup; ${NO_GA_LOG}.` },
  CTRL_GA_INT_EN: { spec: 'GAIntEn', status: N, note: `Writable with EFR.GAMSup; ${NO_GA_LOG}.` },
  CTRL_HI_NUM_INT_REMAP_MODE: {
    spec: 'NumIntRemapMode',
    status: M,
    note: 'Writable with EFR2.NumIntRemapSup: 01b allows 2048 IRTEs a device (Linux’s position, 44:43). Deviation: in that mode a DM = 1 message is fixed or arbitrated whatever data[10:8] says (inferred from Linux); 10b and 11b are not refused.',
  },
  CTRL_HI_EPH_EN: {
    spec: 'EPHEn',
    status: N,
    note: 'Writable with EFR.EPHSup. Deviation: not consulted — DTE.PPR takes effect whatever EPHEn says.',
  },
  CTRL_HI_HAD_UPDATE: {
    spec: 'HADUpdate',
    status: N,
    note: 'Writable with EFR.HASup or HDSup. Deviation: not consulted — DTE.HAD alone selects host accessed and dirty updates.',
  },
  CTRL_HI_GD_UPDATE_DIS: {
    spec: 'GDUpdateDis',
    status: N,
    note: 'Writable with EFR.GTSup. Deviation: not consulted — the unit always sets the guest tables’ dirty bits on writes.',
  },
  CTRL_HI_XT_EN: {
    spec: 'XTEn',
    status: M,
    note: 'Writable with EFR.XTSup: IRTE destinations are 32-bit; clear, only bits 7:0 count.',
  },
  CTRL_HI_INT_CAP_XT_EN: {
    spec: 'IntCapXTEn',
    status: M,
    note: 'Writable with EFR.XTSup: the unit’s interrupts go out through the XT interrupt control registers instead of the MSI.',
  },
  CTRL_HI_GCR3_TRP_MODE: {
    spec: 'GCR3TRPMode',
    status: M,
    note: 'Writable with EFR2.GCR3TRPMode: with host translation in the DTE, the GCR3 root and every GCR3 level are guest physical addresses the host tables translate. Deviation: how the GCR3 walk reads the table in either mode is the model’s reading; no source walks one.',
  },
  CTRL_HI_IRT_CACHE_DIS: {
    spec: 'IRTCacheDis',
    status: M,
    note: 'The IRTE cache is neither read nor filled while it is set.',
  },
};

const CTRL_ABSENT = (what: string) => READS_0(what);

/** Control bits the spec defines that regs.ts does not name (VirtualBox IOMMU_CTRL_T, Linux CONTROL_*). */
export const CONTROL_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'Crw', msb: 21, lsb: 18, status: N, note: CTRL_ABSENT('reserved for future use') },
  { spec: 'SmiFEn', msb: 22, lsb: 22, status: N, note: CTRL_ABSENT('no SMI filter (EFR.SmiFSup = 0)') },
  {
    spec: 'SlfWBDis',
    msb: 23,
    lsb: 23,
    status: N,
    note: CTRL_ABSENT('self write-back disable is not implemented'),
  },
  { spec: 'SmiFLogEn', msb: 24, lsb: 24, status: N, note: CTRL_ABSENT('no SMI filter') },
  {
    spec: 'DualPprLogEn',
    msb: 31,
    lsb: 30,
    status: N,
    note: CTRL_ABSENT('no dual PPR log (EFR.DualPprLogSup = 0)'),
  },
  {
    spec: 'DualEventLogEn',
    msb: 33,
    lsb: 32,
    status: N,
    note: CTRL_ABSENT('no dual event log (EFR.DualEventLogSup = 0)'),
  },
  {
    spec: 'DevTblSegEn',
    msb: 36,
    lsb: 34,
    status: N,
    note: CTRL_ABSENT('one device table segment (EFR.DevTblSegSup = 0)'),
  },
  {
    spec: 'PrivAbrtEn',
    msb: 38,
    lsb: 37,
    status: N,
    note: CTRL_ABSENT('privilege abort control is not implemented'),
  },
  {
    spec: 'PprAutoRspEn',
    msb: 39,
    lsb: 39,
    status: N,
    note: CTRL_ABSENT('no PPR auto response (EFR.PprAutoRspSup = 0)'),
  },
  { spec: 'MarcEn', msb: 40, lsb: 40, status: N, note: CTRL_ABSENT('no MARC apertures (EFR.MarcSup = 0)') },
  {
    spec: 'BlkStopMrkEn',
    msb: 41,
    lsb: 41,
    status: N,
    note: CTRL_ABSENT('no stop-marker blocking (EFR.BlkStopMrkSup = 0)'),
  },
  { spec: 'PprAutoRspAon', msb: 42, lsb: 42, status: N, note: CTRL_ABSENT('no PPR auto response') },
  { spec: 'VCmdEn', msb: 52, lsb: 52, status: N, note: CTRL_ABSENT(NO_VIOMMU) },
  { spec: 'vIommuEn', msb: 53, lsb: 53, status: N, note: CTRL_ABSENT(NO_VIOMMU) },
  {
    spec: 'GAUpdateDis',
    msb: 54,
    lsb: 54,
    status: N,
    note: CTRL_ABSENT('the guest accessed bit is always updated (EFR.GAUpdateDisSup = 0)'),
  },
  {
    spec: 'GAPPIEn',
    msb: 55,
    lsb: 55,
    status: N,
    note: CTRL_ABSENT('no GA PPI disable (EFR2.GAPPIDisSup = 0)'),
  },
  { spec: 'SNPAVICEn', msb: 61, lsb: 61, status: N, note: CTRL_ABSENT('no SNP AVIC (EFR2.SNPAVICSup = 0)') },
];

const INTERRUPT_EDGE =
  'its message goes out when the bit goes from 0 to 1 with its enable set, or when the enable is set with the bit already set; none while it stays set';

export const STATUS_COVERAGE: Readonly<Record<StatusBitName, FieldCoverage>> = {
  STATUS_EVT_OVERFLOW: {
    spec: 'EvtOverflow',
    status: M,
    note: 'W1C. Set when a record finds the event log full: the record is dropped and EvtLogRun clears; no record is written while it is set.',
  },
  STATUS_EVT_LOG_INT: {
    spec: 'EvtLogInt',
    status: M,
    note: `W1C, set by every record written; ${INTERRUPT_EDGE}. Deviation: QEMU and VirtualBox send one per record; the model reads the spec’s “bit = 1 and enable = 1” as an edge (Linux's erratum handling).`,
  },
  STATUS_COM_WAIT_INT: {
    spec: 'ComWaitInt',
    status: M,
    note: 'W1C, set by each COMPLETION_WAIT with I; its message as EvtLogInt’s.',
  },
  STATUS_EVT_LOG_RUN: {
    spec: 'EvtLogRun',
    status: M,
    note: 'Read-only: set on the rising edge of IommuEn ∧ EventLogEn (with a legal EventLen), cleared by an overflow or either bit clearing.',
  },
  STATUS_CMD_BUF_RUN: {
    spec: 'CmdBufRun',
    status: M,
    note: 'Read-only: IommuEn ∧ CmdBufEn, cleared by ILLEGAL_COMMAND_ERROR or COMMAND_HARDWARE_ERROR.',
  },
  STATUS_PPR_OVERFLOW: {
    spec: 'PPROverflow',
    status: M,
    note: 'W1C, as EvtOverflow for the PPR log. Deviation: it raises the PPR interrupt too, by analogy with the event log.',
  },
  STATUS_PPR_INT: {
    spec: 'PPRInt',
    status: M,
    note: 'W1C, set by every page request logged; its message as EvtLogInt’s.',
  },
  STATUS_PPR_LOG_RUN: { spec: 'PPRLogRun', status: M, note: 'Read-only, as EvtLogRun for the PPR log.' },
  STATUS_GA_LOG_RUN: { spec: 'GALogRun', status: N, note: `Never set: ${NO_GA_LOG}.` },
  STATUS_GA_LOG_OVERFLOW: {
    spec: 'GALogOverflow',
    status: N,
    note: `W1C with EFR.GAMSup, never set: ${NO_GA_LOG}.`,
  },
  STATUS_GA_INT: { spec: 'GAInt', status: N, note: `W1C with EFR.GAMSup, never set: ${NO_GA_LOG}.` },
};

export const STATUS_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'PprOverflowB', msb: 11, lsb: 11, status: N, note: READS_0('no dual PPR log') },
  { spec: 'PprLogActive', msb: 12, lsb: 12, status: N, note: READS_0('no dual PPR log') },
  { spec: 'EvtOverflowB', msb: 15, lsb: 15, status: N, note: READS_0('no dual event log') },
  { spec: 'EvtLogActive', msb: 16, lsb: 16, status: N, note: READS_0('no dual event log') },
  { spec: 'PprOverflowEarlyB', msb: 17, lsb: 17, status: N, note: READS_0('no dual PPR log') },
  {
    spec: 'PprOverflowEarly',
    msb: 18,
    lsb: 18,
    status: N,
    note: READS_0('no early overflow warning (EFR.PprOvrflwEarlySup = 0)'),
  },
];

// ---------------------------------------------------------------------------------------------------------
// Extended Feature Registers (§3.4: EFR 0030h, EFR2 01A0h) and the IOMMU capability header (§3.2): what the
// unit does with what each field reports.

export const EFR_COVERAGE: Readonly<Record<keyof EfrFields, FieldCoverage>> = {
  preFSup: { spec: 'PreFSup', status: N, note: READS_0('PREFETCH_IOMMU_PAGES is an illegal command') },
  pprSup: {
    spec: 'PPRSup',
    status: M,
    note: 'From `pageRequests`: the PPR log, its registers and bits, COMPLETE_PPR_REQUEST.',
  },
  xtSup: {
    spec: 'XTSup',
    status: M,
    note: 'From `x2apic`: Control.XTEn and IntCapXTEn, the XT interrupt control registers.',
  },
  nxSup: {
    spec: 'NXSup',
    status: M,
    note: 'From `noExecute`: execute and privilege in requests with PASID reach the guest-table checks (NX, U/S); without it they are dropped.',
  },
  gtSup: {
    spec: 'GTSup',
    status: M,
    note: 'From `guestTranslation`: GCR3 tables and guest tables by PASID; without it GV, GLX, the GCR3 root and GuestPagingMode are reserved.',
  },
  iaSup: {
    spec: 'IASup',
    status: M,
    note: 'From `invalidateAll`: INVALIDATE_IOMMU_ALL, else an illegal command.',
  },
  gaSup: { spec: 'GASup', status: M, note: 'From `guestVirtualApic`: Control.GAEn and the 128-bit IRTEs.' },
  heSup: {
    spec: 'HESup',
    status: N,
    note: 'From `hardwareErrors` (off): the hardware event registers exist, but nothing is latched in them.',
  },
  pcSup: { spec: 'PCSup', status: N, note: READS_0('no performance counters') },
  hats: {
    spec: 'HATS',
    status: M,
    note: 'From `hostLevels` (default 6-level): a DTE.Mode deeper than it allows is ILLEGAL_DEV_TABLE_ENTRY.',
  },
  gats: {
    spec: 'GATS',
    status: M,
    note: 'From `guestLevels` (default 5-level): a 5-level GuestPagingMode without it is ILLEGAL_DEV_TABLE_ENTRY; 0 without GTSup.',
  },
  glxSup: {
    spec: 'GLXSup',
    status: M,
    note: 'From `gcr3Levels` (default 2-level): a DTE.GLX above it is ILLEGAL_DEV_TABLE_ENTRY; 0 without GTSup.',
  },
  smiFSup: { spec: 'SmiFSup', status: N, note: READS_0('no SMI filter; SMI messages are forwarded') },
  smiFRC: { spec: 'SmiFRC', status: N, note: READS_0('no SMI filter registers') },
  gamSup: {
    spec: 'GAMSup',
    status: C,
    note: `From \`guestVapicMode\` (1): Control.GAMEn and the guest virtual APIC IRTE, decoded and checked; ${NO_GA_LOG}.`,
  },
  dualPprLogSup: { spec: 'DualPprLogSup', status: N, note: READS_0('one PPR log') },
  dualEventLogSup: { spec: 'DualEventLogSup', status: N, note: READS_0('one event log') },
  pasMax: {
    spec: 'PASmax',
    status: M,
    note: 'From `pasidBits` − 1 (default 15); the GCR3 levels bound the PASIDs a DTE indexes; 0 without GTSup.',
  },
  usSup: { spec: 'USSup', status: N, note: READS_0('user/supervisor host page tables are not implemented') },
  devTblSegSup: { spec: 'DevTblSegSup', status: N, note: READS_0('one device table segment') },
  pprOvrflwEarlySup: { spec: 'PprOvrflwEarlySup', status: N, note: READS_0('no early overflow warning') },
  pprAutoRspSup: {
    spec: 'PprAutoRspSup',
    status: N,
    note: READS_0('no PPR auto response; the unit answers a request its log cannot take itself'),
  },
  marcSup: { spec: 'MarcSup', status: N, note: READS_0('no MARC apertures') },
  blkStopMrkSup: { spec: 'BlkStopMrkSup', status: N, note: READS_0('no stop-marker blocking') },
  perfOptSup: { spec: 'PerfOptSup', status: N, note: READS_0('no performance optimization control') },
  msiCapMmioSup: {
    spec: 'MsiCapMmioSup',
    status: M,
    note: 'From `msiCapMmio`: the MSI capability at 0158h–0164h. Deviation: the model has no PCI configuration space, so a unit without the mirror and without IntCapXTEn cannot send its interrupts.',
  },
  gIoSup: { spec: 'GIoSup', status: M, note: 'From `guestIoProtection`: DTE.GIoV, else reserved.' },
  haSup: { spec: 'HASup', status: M, note: 'From `hostAccess`: host accessed-bit updates through DTE.HAD.' },
  ephSup: {
    spec: 'EPHSup',
    status: M,
    note: 'From `enhancedPpr`: DTE.PPR (with PPRSup) and GPRP are legal, else ILLEGAL_DEV_TABLE_ENTRY; see Control.EPHEn.',
  },
  attrFwSup: { spec: 'AttrFWSup', status: N, note: READS_0(`no attribute forwarding: ${NO_MEMORY_TYPES}`) },
  hdSup: {
    spec: 'HDSup',
    status: M,
    note: 'From `hostDirty`: host dirty-bit updates through DTE.HAD = 11b.',
  },
  invIotlbTypeSup: {
    spec: 'InvIotlbTypeSup',
    status: N,
    note: READS_0('INVALIDATE_IOTLB_PAGES.Type is not passed on'),
  },
  gaUpdateDisSup: {
    spec: 'GAUpdateDisSup',
    status: N,
    note: READS_0('the guest accessed bit is always set'),
  },
  forcePhyDestSup: { spec: 'ForcePhyDestSup', status: N, note: READS_0('not implemented') },
  snpSup: { spec: 'SNPSup', status: N, note: READS_0('no SEV-SNP: no RMP checks') },
};

export const EFR2_COVERAGE: Readonly<Record<keyof Efr2Fields, FieldCoverage>> = {
  sevSnpIoSup: { spec: 'SEVSNPIOSup', status: N, note: READS_0('no SEV-TIO') },
  tmpmSup: { spec: 'TMPMSup', status: N, note: READS_0('not implemented') },
  gcr3TrpMode: {
    spec: 'GCR3TRPMode',
    status: M,
    note: 'From `gcr3TrpMode`: Control.GCR3TRPMode is writable (GCR3 tables in guest physical memory).',
  },
  gappiDisSup: { spec: 'GAPPIDisSup', status: N, note: READS_0('IRTE bit 5 stays reserved') },
  snpAvicSup: { spec: 'SNPAVICSup', status: N, note: READS_0('no SNP AVIC') },
  numIntRemapSup: {
    spec: 'NumIntRemapSup',
    status: M,
    note: 'From `interruptRemapEntries` (default 512): 1 makes Control.NumIntRemapMode writable for 2048 IRTEs a device.',
  },
  htRangeIgnore: { spec: 'HTRangeIgnore', status: N, note: READS_0(`no HyperTransport range: ${HT}`) },
};

export const CAPABILITY_HEADER_COVERAGE: Readonly<Record<keyof CapabilityHeaderFields, FieldCoverage>> = {
  capId: { spec: 'CapId', status: M, note: '0Fh (secure device).' },
  capPtr: { spec: 'CapPtr', status: N, note: '0: the model has no PCI configuration space to chain into.' },
  capType: { spec: 'CapType', status: M, note: '3 (IOMMU).' },
  capRev: { spec: 'CapRev', status: M, note: '0, as QEMU reports; no source gives another value.' },
  iotlbSup: {
    spec: 'IotlbSup',
    status: M,
    note: 'From `iotlbSupport` (1): the unit answers ATS Translation Requests (with DTE.I) and INVALIDATE_IOTLB_PAGES reaches the endpoint.',
  },
  htTunnel: { spec: 'HtTunnel', status: N, note: READS_0(HT) },
  npCache: {
    spec: 'NpCache',
    status: M,
    note: 'From `npCache` (off by default, as on hardware): with it on a not-present host leaf is cached and faults until INVALIDATE_IOMMU_PAGES reaches it.',
  },
  efrSup: { spec: 'EFRSup', status: M, note: '1: the EFR is implemented.' },
  capExt: { spec: 'CapExt', status: N, note: READS_0('no Miscellaneous Information Register 1') },
};

// ---------------------------------------------------------------------------------------------------------
// Device table entry (§2.2.2.1), fetched and checked by the device-table path, cached until
// INVALIDATE_DEVTAB_ENTRY or INVALIDATE_IOMMU_ALL.

const PASS = (what: string) =>
  `${what} messages (physical destination) are forwarded when set, else target-aborted without an event; a logical one is always aborted.`;
const NO_VIOMMU_FIELD = `Reserved: ${NO_VIOMMU}; set, ILLEGAL_DEV_TABLE_ENTRY with RZ.`;

export const DTE_COVERAGE: Readonly<Record<keyof DeviceTableEntry, FieldCoverage>> = {
  v: {
    spec: 'V',
    status: M,
    note: 'V = 0: DMA passes untranslated, unchecked (IV still governs interrupts); V = 1: the translation half is checked and used.',
  },
  tv: {
    spec: 'TV',
    status: M,
    note: 'TV = 0 with V = 1 blocks DMA. Deviation: the block is logged as IO_PAGE_FAULT with PR = 0 (VirtualBox; QEMU logs nothing).',
  },
  had: {
    spec: 'HAD',
    status: M,
    note: 'Host v1 updates: 01b accessed, 11b accessed and dirty; 10b is ILLEGAL_DEV_TABLE_ENTRY; not checked against EFR.HASup/HDSup.',
  },
  mode: {
    spec: 'Mode',
    status: M,
    note: '0: no host translation, IR/IW still apply; 1–6: host levels; 7 is ILLEGAL_DEV_TABLE_ENTRY. Deviation: a Mode above EFR.HATS is ILLEGAL_DEV_TABLE_ENTRY too (VirtualBox raises IO_PAGE_FAULT).',
  },
  hostPageTableRootPtr: {
    spec: 'Host Page Table Root Pointer',
    status: M,
    note: 'The v1 tables; a read the bus aborts is PAGE_TAB_HARDWARE_ERROR at the entry’s address.',
  },
  ppr: {
    spec: 'PPR',
    status: M,
    note: 'Page requests reach the PPR log only through PPR = 1 (reserved without EPHSup and PPRSup); otherwise INVALID_PPR_REQUEST, answered Invalid Request. Deviation: these checks and answers (Response Failure when the log does not take a request) are the model’s; no source gives them.',
  },
  gprp: {
    spec: 'GPRP',
    status: C,
    note: 'Reserved without EPHSup (ILLEGAL_DEV_TABLE_ENTRY); no effect: a PRG response carries the PASID whenever the command’s GN is set.',
  },
  giov: {
    spec: 'GIoV',
    status: M,
    note: 'With GV, requests without PASID use the guest tables of PASID 0; reserved without EFR.GIoSup.',
  },
  gv: {
    spec: 'GV',
    status: M,
    note: 'Requests with PASID go through the GCR3 table; reserved without GTSup. Deviation: a request with PASID through GV = 0 is IO_PAGE_FAULT with GN; no source names the event.',
  },
  glx: {
    spec: 'GLX',
    status: M,
    note: 'GCR3 levels − 1; 3, or a GLX above EFR.GLXSup, is ILLEGAL_DEV_TABLE_ENTRY. Deviation: a PASID the levels cannot index is IO_PAGE_FAULT (PR = 0), the model’s choice.',
  },
  gcr3TableRootPtr: {
    spec: 'GCR3 Table Root Pointer',
    status: M,
    note: 'The GCR3 table, in three pieces (address bits 14:12, 30:15, 51:31); a guest physical address with Control.GCR3TRPMode and host translation; reserved without GTSup.',
  },
  ir: {
    spec: 'IR',
    status: M,
    note: 'Read permission, ANDed with every host level’s (and the guest’s when nested); with Mode 0 it alone decides.',
  },
  iw: { spec: 'IW', status: M, note: 'Write permission, as IR.' },
  domainId: {
    spec: 'DomainID',
    status: M,
    note: 'Tags the IOTLB, page-directory and GCR3 cache entries INVALIDATE_IOMMU_PAGES selects; IO_PAGE_FAULT reports it without GN.',
  },
  i: {
    spec: 'I',
    status: M,
    note: 'ATS Translation Requests of the device are answered only with I = 1 (else refused unrecorded).',
  },
  se: {
    spec: 'SE',
    status: M,
    note: 'After the first IO_PAGE_FAULT of the device its later ones are not logged (the request still fails). Deviation: the first is counted from when the DTE was cached, as VirtualBox does; no source says when the count restarts.',
  },
  sa: {
    spec: 'SA',
    status: M,
    note: 'No IO_PAGE_FAULT of the device’s DMA is logged; the request still fails.',
  },
  ioCtl: {
    spec: 'IoCtl',
    status: N,
    note: 'No effect: the bus carries no port I/O; 11b is not refused.',
  },
  cache: { spec: 'Cache', status: N, note: 'No effect: an IOTLB caching hint the model does not act on.' },
  sd: { spec: 'SD', status: N, note: `No effect: ${NO_SNOOP}.` },
  ex: {
    spec: 'EX',
    status: M,
    note: 'The exclusion range applies to this device’s requests without PASID when ExclBase.Allow is 0.',
  },
  sysMgt: {
    spec: 'SysMgt',
    status: N,
    note: 'No effect: no system-management messages are modelled; SMI MSIs are forwarded (VirtualBox).',
  },
  sats: { spec: 'SATS', status: N, note: 'No effect: no secure ATS is modelled.' },
  iv: {
    spec: 'IV',
    status: M,
    note: 'IV = 0: interrupts pass unremapped; IV = 1: the interrupt half is checked and used (for interrupts whatever the translation half holds).',
  },
  intTabLen: {
    spec: 'IntTabLen',
    status: M,
    note: '2^IntTabLen entries: an index beyond is IO_PAGE_FAULT with I; above 11 with IntCtl = 10b is ILLEGAL_DEV_TABLE_ENTRY.',
  },
  ig: { spec: 'IG', status: M, note: 'No IO_PAGE_FAULT of the device’s interrupts is logged.' },
  intTablePtr: {
    spec: 'Interrupt Table Root Pointer',
    status: M,
    note: 'The interrupt remapping table (4- or 16-byte entries by Control.GAEn); a read the bus aborts drops the interrupt without an event.',
  },
  guestPagingMode: {
    spec: 'GuestPagingMode',
    status: M,
    note: '4- or 5-level guest tables; 2, 3, or 5-level without EFR.GATS 5-level, is ILLEGAL_DEV_TABLE_ENTRY (with GV); reserved without GTSup.',
  },
  initPass: { spec: 'InitPass', status: M, note: PASS('INIT') },
  eIntPass: { spec: 'EIntPass', status: M, note: PASS('ExtINT') },
  nmiPass: { spec: 'NMIPass', status: M, note: PASS('NMI') },
  hptMode: { spec: 'HPTMode', status: N, note: 'No effect: a hint the model’s walks do not need.' },
  intCtl: {
    spec: 'IntCtl',
    status: M,
    note: 'Fixed and arbitrated interrupts: 00b target-aborts and logs INVALID_DEVICE_REQUEST (type 101b), 01b forwards, 10b remaps, 11b is ILLEGAL_DEV_TABLE_ENTRY.',
  },
  lint0Pass: {
    spec: 'Lint0Pass',
    status: N,
    note: 'No effect: an MSI cannot express LINT0, and the model has no interrupt pins.',
  },
  lint1Pass: {
    spec: 'Lint1Pass',
    status: N,
    note: 'No effect: an MSI cannot express LINT1, and the model has no interrupt pins.',
  },
  vImuEn: { spec: 'vImuEn', status: C, note: NO_VIOMMU_FIELD },
  gDeviceId: { spec: 'GDeviceID', status: C, note: NO_VIOMMU_FIELD },
  guestId: { spec: 'GuestID', status: C, note: NO_VIOMMU_FIELD },
  attrV: { spec: 'AttrV', status: N, note: `No effect: ${NO_MEMORY_TYPES}.` },
  mode0Fc: { spec: 'Mode0FC', status: N, note: `No effect: ${NO_SNOOP}.` },
  snoopAttr: {
    spec: 'SnoopAttr',
    status: N,
    note: `No effect: ${NO_SNOOP}; ATS completions carry no N bit.`,
  },
};

export const DTE_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  {
    spec: 'Available to software',
    msb: 245,
    lsb: 245,
    status: M,
    note: 'Ignored, neither decoded nor checked (FreeBSD lays it out as free for software).',
  },
];

// ---------------------------------------------------------------------------------------------------------
// GCR3 table entries (§2.2.2.1 GV, GLX and the GCR3 root; the guest-translation part of §2.2).

export const GCR3_ENTRY_COVERAGE: Readonly<Record<keyof Gcr3Entry, FieldCoverage>> = {
  valid: {
    spec: 'GCR3_VALID',
    status: M,
    note: '0 ends the walk with IO_PAGE_FAULT (GN, PR = 0). Deviation: the GCR3 walk’s events (not valid PR = 0; reserved bits 11:1, 63:52 PR = 1, RZ = 1; an aborted read PAGE_TAB_HARDWARE_ERROR) are the model’s choice; no source names them.',
  },
  pointer: {
    spec: 'GCR3 table / guest CR3 pointer',
    status: M,
    note: 'The next level’s table, or at the last level the guest CR3 (a guest physical address the host tables translate when the DTE also translates on the host); cached by (DeviceID, PASID).',
  },
};

// ---------------------------------------------------------------------------------------------------------
// Interrupt remapping table entries (§2.2.5.1 32-bit, §2.2.5.2 128-bit).

const REMAP_EN =
  'RemapEn = 0 is IO_PAGE_FAULT with I (PR = 0). Deviation: every reserved bit is refused (PR = 1, RZ = 1); VirtualBox checks only GuestMode.';
const SUP_IOPF =
  'Suppresses the IO_PAGE_FAULT of every check of this entry; the interrupt is dropped either way.';
const INT_TYPE_NOTE =
  'Fixed (000b) or arbitrated (001b, delivered lowest priority); any other type is IO_PAGE_FAULT with PR = 1, RZ = 1.';
const RQ_EOI =
  'Decoded, no effect: the model has no EOI requests (QEMU maps it to the redirection hint instead).';
const DM = 'Logical (1) or physical (0) destination mode of the remapped interrupt.';
const VECTOR = 'The remapped interrupt’s vector; trigger mode and redirection hint come from the message.';

export const IRTE32_COVERAGE: Readonly<Record<Irte32FieldName, FieldCoverage>> = {
  remapEn: { spec: 'RemapEn', status: M, note: REMAP_EN },
  supIopf: { spec: 'SupIOPF', status: M, note: SUP_IOPF },
  intType: { spec: 'IntType', status: M, note: INT_TYPE_NOTE },
  rqEoi: { spec: 'RqEoi', status: N, note: RQ_EOI },
  dm: { spec: 'DM', status: M, note: DM },
  destination: { spec: 'Destination', status: M, note: 'The 8-bit APIC ID of the remapped interrupt.' },
  vector: { spec: 'Vector', status: M, note: VECTOR },
};

export const IRTE32_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  {
    spec: 'GuestMode',
    msb: 7,
    lsb: 7,
    status: C,
    note: 'Reserved in this format (a 32-bit entry cannot post; VirtualBox): set, IO_PAGE_FAULT with PR = 1, RZ = 1.',
  },
];

export const IRTE128_REMAPPED_COVERAGE: Readonly<Record<IrteFieldName<RemappedIrte>, FieldCoverage>> = {
  guestMode: {
    spec: 'GuestMode',
    status: M,
    note: '0 selects this format; with Control.GAMEn other than 1 every entry is read in this format.',
  },
  remapEn: { spec: 'RemapEn', status: M, note: REMAP_EN },
  supIopf: { spec: 'SupIOPF', status: M, note: SUP_IOPF },
  intType: { spec: 'IntType', status: M, note: INT_TYPE_NOTE },
  rqEoi: { spec: 'RqEoi', status: N, note: RQ_EOI },
  dm: { spec: 'DM', status: M, note: DM },
  destination: {
    spec: 'Destination',
    status: M,
    note: 'Bits 23:0 and 31:24 of the APIC ID: all 32 with Control.XTEn, else bits 7:0 (as QEMU masks them).',
  },
  vector: { spec: 'Vector', status: M, note: VECTOR },
};

const NOT_POSTED = 'Decoded, no effect: the interrupt is not posted';

export const IRTE128_VAPIC_COVERAGE: Readonly<Record<IrteFieldName<VapicIrte>, FieldCoverage>> = {
  guestMode: {
    spec: 'GuestMode',
    status: C,
    note: 'With Control.GAMEn = 1, 1 selects this format: the entry is checked, then the interrupt is dropped (nothing is posted).',
  },
  remapEn: { spec: 'RemapEn', status: C, note: REMAP_EN },
  supIopf: { spec: 'SupIOPF', status: M, note: SUP_IOPF },
  gaLogIntr: { spec: 'GALogIntr', status: N, note: `${NOT_POSTED}; ${NO_GA_LOG}.` },
  isRun: { spec: 'IsRun', status: N, note: `${NOT_POSTED}, so no doorbell reaches a running vCPU.` },
  destination: { spec: 'Destination', status: N, note: `${NOT_POSTED}.` },
  gaTag: { spec: 'GATag', status: N, note: `${NOT_POSTED}; ${NO_GA_LOG}.` },
  vector: { spec: 'Vector', status: N, note: `${NOT_POSTED}; it is only reported in the trace.` },
  gaRootPtr: {
    spec: 'GA Root Pointer',
    status: N,
    note: `${NOT_POSTED}: nothing is written to the vAPIC backing page.`,
  },
};

// ---------------------------------------------------------------------------------------------------------
// Commands (§2.4). Every command is decoded with its reserved-bit and feature checks (ILLEGAL_COMMAND_ERROR
// stops the buffer); the notes say what the unit does after that.

export const COMMAND_COVERAGE: Readonly<Record<CommandName, Coverage>> = {
  COMPLETION_WAIT: {
    status: M,
    note: 'S stores the 64-bit data (one write to RAM, else two 32-bit writes with the unit’s requester ID); I sets ComWaitInt; F needs nothing: every command completes before the next is fetched. A store the bus aborts is COMMAND_HARDWARE_ERROR and no interrupt.',
  },
  INVALIDATE_DEVTAB_ENTRY: {
    status: M,
    note: 'Drops the DeviceID’s cached DTE and the GCR3 entries read through it.',
  },
  INVALIDATE_IOMMU_PAGES: {
    status: M,
    note: 'GN = 0: the domain’s host translations over the range and every guest-over-host one of the domain; GN = 1: the (DomainID, PASID) guest translations over the range and that PASID’s GCR3 entry; PDE also drops page-directory entries.',
  },
  INVALIDATE_IOTLB_PAGES: {
    status: M,
    note: 'Needs IotlbSup (else illegal): an ATS invalidation of the range to the endpoint, completed at once.',
  },
  INVALIDATE_INTERRUPT_TABLE: { status: M, note: 'Drops the DeviceID’s cached IRTEs.' },
  PREFETCH_IOMMU_PAGES: {
    status: C,
    note: 'Always ILLEGAL_COMMAND_ERROR: EFR.PreFSup is 0. Decoded and checked; a unit with PreFSup would prefetch nothing (a hint).',
  },
  COMPLETE_PPR_REQUEST: {
    status: M,
    note: 'Needs PPRSup (else illegal): sends the PRG response (status 0 success, 1 invalid request, other failure) for the tag’s PRG index to the endpoint.',
  },
  INVALIDATE_IOMMU_ALL: {
    status: M,
    note: 'Needs IASup (else illegal): empties the DTE, GCR3, IOTLB, page-directory and IRTE caches.',
  },
};

/** Opcodes the spec defines that `COMMAND_OPCODE` does not name. */
export const SPEC_ONLY_COMMANDS: readonly SpecOnlyCode[] = [
  {
    name: 'INSERT_GUEST_EVENT',
    code: 0x9,
    status: C,
    note: `ILLEGAL_COMMAND_ERROR: ${NO_VIOMMU}.`,
  },
  { name: 'RESET_VMMIO', code: 0xa, status: C, note: `ILLEGAL_COMMAND_ERROR: ${NO_VIOMMU}.` },
];

const DEVICE_ID = (what: string): FieldCoverage => ({ spec: 'DeviceID', status: M, note: what });
const RANGE_ADDRESS: FieldCoverage = {
  spec: 'Address',
  status: M,
  note: 'Bits 63:12 of the address; with S the lowest clear bit at or above 12 encodes a naturally aligned range.',
};
const RANGE_S: FieldCoverage = {
  spec: 'S',
  status: M,
  note: 'Size: 0 one 4 KiB page, 1 the range the address encodes (all ones: everything).',
};
const GN = (what: string): FieldCoverage => ({ spec: 'GN', status: M, note: what });

export const COMMAND_FIELD_COVERAGE: {
  readonly [K in CommandName]: Readonly<Record<CommandFieldName<K>, FieldCoverage>>;
} = {
  COMPLETION_WAIT: {
    store: {
      spec: 'S',
      status: M,
      note: 'Store the data at the address when every earlier command completed.',
    },
    interrupt: { spec: 'I', status: M, note: 'Set ComWaitInt (and interrupt with ComWaitIntEn).' },
    flush: { spec: 'F', status: M, note: 'Accepted; commands already complete in order.' },
    storeAddress: { spec: 'Store Address', status: M, note: '8-byte aligned system physical address.' },
    storeDataLo: { spec: 'Store Data[31:0]', status: M, note: 'Written first.' },
    storeDataHi: { spec: 'Store Data[63:32]', status: M, note: 'Written second.' },
  },
  INVALIDATE_DEVTAB_ENTRY: { deviceId: DEVICE_ID('The DTE to drop.') },
  INVALIDATE_IOMMU_PAGES: {
    pasid: { spec: 'PASID', status: M, note: 'With GN, the PASID whose guest translations are dropped.' },
    domainId: { spec: 'DomainID', status: M, note: 'The domain whose translations are dropped.' },
    s: RANGE_S,
    pde: { spec: 'PDE', status: M, note: 'Also page-directory (non-leaf) entries.' },
    gn: GN('1: guest translations of (DomainID, PASID); 0: host ones, and every nested one of the domain.'),
    address: RANGE_ADDRESS,
  },
  INVALIDATE_IOTLB_PAGES: {
    deviceId: DEVICE_ID('The endpoint whose ATC is invalidated.'),
    maxPend: {
      spec: 'MaxPend',
      status: N,
      note: 'Passed to the endpoint, unused: invalidations complete at once.',
    },
    queueId: { spec: 'QueueID', status: N, note: 'Passed to the endpoint, unused.' },
    pasid: {
      spec: 'PASID',
      status: M,
      note: 'With GN, the PASID of the ATS invalidation (20 bits in three pieces).',
    },
    s: RANGE_S,
    gn: GN('1: the invalidation carries the PASID.'),
    type: {
      spec: 'Type',
      status: N,
      note: 'Decoded, not passed on: no source says what values other than 0 do.',
    },
    address: RANGE_ADDRESS,
  },
  INVALIDATE_INTERRUPT_TABLE: { deviceId: DEVICE_ID('The device whose cached IRTEs are dropped.') },
  PREFETCH_IOMMU_PAGES: {
    deviceId: { spec: 'DeviceID', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
    pfCount: { spec: 'PFCount', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
    pasid: { spec: 'PASID', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
    s: { spec: 'S', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
    gn: { spec: 'GN', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
    invalidate: { spec: 'Inval', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
    address: { spec: 'Address', status: C, note: 'Decoded; the command is illegal without PreFSup.' },
  },
  COMPLETE_PPR_REQUEST: {
    deviceId: DEVICE_ID('The endpoint the response goes to.'),
    pasid: { spec: 'PASID', status: M, note: 'With GN, the response’s PASID.' },
    gn: GN('1: the response carries the PASID.'),
    tag: {
      spec: 'CompletionTag',
      status: M,
      note: 'The PRG index (bits 104:96, Linux’s layout; others call 111:96 one tag, and 107:105 are not checked).',
    },
    status: {
      spec: 'Status',
      status: M,
      note: 'The PRG response code: 0 success, 1 invalid request, else failure.',
    },
  },
  INVALIDATE_IOMMU_ALL: {},
};

// ---------------------------------------------------------------------------------------------------------
// Events (§2.5) and their flags, written by the event log.

export const EVENT_COVERAGE: Readonly<Record<EventName, Coverage>> = {
  ILLEGAL_DEV_TABLE_ENTRY: {
    status: M,
    note: 'A DTE half that is illegal for the request (reserved bits with RZ, bad Mode, HAD, GLX, GuestPagingMode, IntCtl or IntTabLen); never suppressed.',
  },
  IO_PAGE_FAULT: {
    status: M,
    note: 'Translation, permission and reserved-bit failures of DMA (DomainID, or PASID with GN) and of interrupt remapping (I); suppressed by DTE.SA/SE, DTE.IG and IRTE.SupIOPF.',
  },
  DEV_TAB_HARDWARE_ERROR: {
    status: M,
    note: 'A DTE read the bus aborted, at the DTE’s address, Type master abort (the model’s bus signals no other); never suppressed.',
  },
  PAGE_TAB_HARDWARE_ERROR: {
    status: M,
    note: 'A page-table or GCR3-table read the bus aborted, at the entry’s address, Type master abort.',
  },
  ILLEGAL_COMMAND_ERROR: {
    status: M,
    note: 'An undefined opcode, a command of a feature the unit lacks, a reserved bit set, or a vIOMMU host’s refusal; CmdBufRun clears first.',
  },
  COMMAND_HARDWARE_ERROR: {
    status: M,
    note: 'A command fetch or completion store the bus aborted; CmdBufRun clears. Deviation: Type is master abort, as for every bus abort in the model (the bus signals no other; VirtualBox reports a data error).',
  },
  IOTLB_INV_TIMEOUT: {
    status: N,
    note: 'Never logged: endpoints take ATS invalidations at once.',
  },
  INVALID_DEVICE_REQUEST: {
    status: M,
    note: 'Only type 101b: an interrupt write from a device whose DTE IntCtl is 00b; the other request kinds do not reach the model (no ATS, no untranslated-request checks).',
  },
  INVALID_PPR_REQUEST: {
    status: M,
    note: 'A page request from a device whose DTE is unusable, not valid or has PPR = 0, laid out as the PPR log entry (Linux); the unit answers Invalid Request.',
  },
};

export const SPEC_ONLY_EVENTS: readonly SpecOnlyCode[] = [
  {
    name: 'EVENT_COUNTER_ZERO',
    code: 0xa,
    status: N,
    note: 'No performance counters; the code is disputed (FreeBSD 0xA, VirtualBox 0x10).',
  },
  { name: 'RMP_PAGE_FAULT', code: 0xd, status: N, note: 'No SEV-SNP: no RMP checks (Linux).' },
  { name: 'RMP_HARDWARE_ERROR', code: 0xe, status: N, note: 'No SEV-SNP: no RMP checks (Linux).' },
];

export const EVENT_FLAG_COVERAGE: Readonly<Record<keyof typeof EVENT_FLAG, Coverage>> = {
  GN: {
    status: M,
    note: 'A request with PASID whose guest walk failed (the PASID is reported). Deviation: a host failure under a guest walk is reported GN = 0 with the guest physical address, the model’s choice.',
  },
  NX: { status: M, note: 'An execute request with PASID (with EFR.NXSup).' },
  US: { status: M, note: 'A user-mode request with PASID.' },
  I: { status: M, note: 'The failed request was an interrupt.' },
  PR: {
    status: M,
    note: 'The entry was present: permission, reserved-bit and level failures; 0 for a not-present one.',
  },
  RW: { status: M, note: 'A write; an interrupt sets it only when its DTE fetch fails.' },
  PE: { status: M, note: 'Permission denied.' },
  RZ: {
    status: M,
    note: 'A reserved bit was set. Deviation: a NextLevel the entry’s level cannot have is reported with RZ too; the walk cannot tell it from a reserved bit.',
  },
  TR: { status: N, note: `Never set: ${NO_TR_EVENTS}.` },
};

const EV_DEVICE: FieldCoverage = { spec: 'DeviceID', status: M, note: 'The requester ID.' };
const EV_ADDRESS = (what: string): FieldCoverage => ({ spec: 'Address', status: M, note: what });
const EV_FLAGS = (what: string): FieldCoverage => ({ spec: 'Flags', status: M, note: what });
const EV_TYPE = (what: string): FieldCoverage => ({ spec: 'Type', status: M, note: what });

export const EVENT_FIELD_COVERAGE: {
  readonly [K in EventName]: Readonly<Record<EventFieldName<K>, FieldCoverage>>;
} = {
  ILLEGAL_DEV_TABLE_ENTRY: {
    deviceId: EV_DEVICE,
    pasid: { spec: 'PASID', status: M, note: 'The request’s PASID (with GN), else 0.' },
    flags: EV_FLAGS('GN, I, RW, RZ; TR never.'),
    address: EV_ADDRESS('The request’s page address, or the interrupt message’s address.'),
  },
  IO_PAGE_FAULT: {
    deviceId: EV_DEVICE,
    domainOrPasid: {
      spec: 'DomainID or PASID',
      status: M,
      note: 'The PASID with GN, else the DTE’s DomainID (0 for a DeviceID beyond the table).',
    },
    flags: EV_FLAGS('Every flag but TR.'),
    address: EV_ADDRESS(
      'The input address (the guest physical address for a host failure under a guest walk), or the interrupt message’s address.',
    ),
  },
  DEV_TAB_HARDWARE_ERROR: {
    deviceId: EV_DEVICE,
    flags: EV_FLAGS('RW for a DMA write; I with RW for an interrupt.'),
    type: EV_TYPE('Target abort.'),
    address: EV_ADDRESS('The DTE’s system physical address.'),
  },
  PAGE_TAB_HARDWARE_ERROR: {
    deviceId: EV_DEVICE,
    domainOrPasid: {
      spec: 'DomainID or PASID',
      status: M,
      note: 'The PASID with GN, else the DomainID (bits 47:32 only).',
    },
    flags: EV_FLAGS('GN, RW.'),
    type: EV_TYPE('Target abort.'),
    address: EV_ADDRESS('The system physical address of the entry the walk could not read.'),
  },
  ILLEGAL_COMMAND_ERROR: { address: EV_ADDRESS('The command’s system physical address.') },
  COMMAND_HARDWARE_ERROR: {
    type: EV_TYPE('Master abort (see the event).'),
    address: EV_ADDRESS('The command’s address, or the completion store’s.'),
  },
  IOTLB_INV_TIMEOUT: {
    deviceId: { spec: 'DeviceID', status: N, note: 'Never logged.' },
    address: { spec: 'Address', status: N, note: 'Never logged (a 16-byte aligned command address).' },
  },
  INVALID_DEVICE_REQUEST: {
    deviceId: EV_DEVICE,
    pasid: { spec: 'PASID', status: M, note: '0: interrupt writes carry none.' },
    flags: { spec: 'Flags', status: N, note: '0: GN, US and TR are never set for an interrupt write.' },
    type: EV_TYPE('101b.'),
    address: EV_ADDRESS('The interrupt message’s address.'),
  },
  INVALID_PPR_REQUEST: {
    deviceId: EV_DEVICE,
    pasid: { spec: 'PASID', status: M, note: 'The request’s PASID, else 0.' },
    tag: { spec: 'Tag', status: M, note: 'PRG index and last-page bit, as in the PPR log.' },
    flags: EV_FLAGS('The PPR log’s flags.'),
    address: EV_ADDRESS('The requested address.'),
  },
};

// ---------------------------------------------------------------------------------------------------------
// The PPR log entry (the PPR log beside §2.5), written for each page request the DTE allows.

export const PPR_LOG_ENTRY_COVERAGE: Readonly<Record<keyof PprLogEntry, FieldCoverage>> = {
  type: { spec: 'Type', status: M, note: '1: a page request (the only type the unit writes).' },
  deviceId: { spec: 'DeviceID', status: M, note: 'The requester ID.' },
  pasid: {
    spec: 'PASID',
    status: M,
    note: 'The request’s PASID with GN, else 0; bits 15:0 and 19:16 in two pieces.',
  },
  tag: { spec: 'Tag', status: M, note: 'The PRG index in 8:0 and the last-request-in-group bit 9.' },
  flags: { spec: 'Flags', status: M, note: 'The PPR flags below.' },
  address: { spec: 'Address', status: M, note: 'The requested address.' },
};

export const PPR_FLAG_COVERAGE: Readonly<Record<keyof typeof PPR_FLAG, Coverage>> = {
  EXEC: { status: M, note: 'Execute requested.' },
  READ: { status: M, note: 'Set for every request that is not a write.' },
  WRITE: { status: M, note: 'Write requested.' },
  US: { status: M, note: 'A user-mode request with PASID.' },
  RVSD: { status: N, note: 'Never set: the endpoints send no request with reserved bits.' },
  GN: { status: M, note: 'The request carried a PASID.' },
};
