/**
 * What the SMMUv3 model does with every register, STE and CD field, command, event and PRI queue entry
 * field the architecture (IHI 0070) defines: a hand-written status per item, keyed by the names the code
 * uses (`REG`, `STE_LAYOUT` and the STE address fields, `CD_LAYOUT` and the CD address fields, `CMD_OPCODE`
 * and `CMD_CFGI_ALL`, `EVENT_ID`, the PRI entry fields), plus the spec items the code has no name for.
 * `coverage-doc.ts` renders it into docs/vendors/smmuv3.md; `coverage.test.ts` fails when an item in the
 * code has no status here or an entry names something the code lacks, so the document cannot drift.
 *
 * Statuses, judged from the device model (`hw/smmuv3.ts`, `translate.ts`, the queues), not from the codecs:
 * - `modelled`: the model implements what the spec says the item does — a register's reads, writes and
 *   effects; a field's effect on translation, caching or event recording; a command's action; an event the
 *   model records.
 * - `checked`: decoded and validated (ILLEGAL → C_BAD_STE/C_BAD_CD, CERROR_ILL, Guarded writes, RES0
 *   masks) but with no further behaviour.
 * - `not modelled`: no effect; the note says why (the feature is not advertised, so the field is RES0 or
 *   IGNORED; the bus has no memory attributes; or the behaviour is not implemented yet).
 * The status type and the entry shapes are core's (`@iommukit/core`, spec-coverage/), shared by every vendor.
 */
import type { Coverage, FieldCoverage, SpecOnlyField, SpecOnlyRegister } from '@iommukit/core';
import type { Cd } from './hw/cd.js';
import type { CMD_OPCODE, CommandName } from './hw/commands.js';
import type { EventName } from './hw/events.js';
import type { PriEntry } from './hw/priq.js';
import type { RegName } from './hw/regs.js';
import type { Ste } from './hw/ste.js';

export type CommandCoverageName = keyof typeof CMD_OPCODE | CommandName;

const M = 'modelled';
const C = 'checked';
const N = 'not modelled';

const NO_ATTRS = 'the bus has no memory attributes';

// ---------------------------------------------------------------------------------------------------------
// Registers (§6.2, §6.3).

export const REGISTER_COVERAGE: Readonly<Record<RegName, Coverage>> = {
  IDR0: {
    status: M,
    note: 'Derived from the options: S1P, S2P, TTF (VMSAv8-64 only), COHACC, HTTU, ATS, ASID16, MSI, PRI, VMID16, CD2L, TTENDIAN (little-endian), STALL_MODEL, TERM_MODEL = 1, ST_LEVEL, SEV; NS1ATS = 1 with ATS and both stages (no split-stage ATS); BTM, DORMHINT, Hyp, ATOS, VMW, VATOS, ATSRECERR and RME_IMPL read 0.',
  },
  IDR1: {
    status: M,
    note: 'SIDSIZE, SSIDSIZE and CMDQS/EVENTQS/PRIQS from the options; ATTR_TYPES_OVR, ATTR_PERMS_OVR, REL, QUEUES_PRESET, TABLES_PRESET and ECMDQ read 0.',
  },
  IDR2: { status: M, note: 'Reads 0 (BA_VATOS: no VATOS interface).' },
  IDR3: {
    status: M,
    note: 'HAD (SMMUv3.1 with stage 1), XNX (SMMUv3.1 with stage 2) and RIL from the options; every other feature bit reads 0.',
  },
  IDR4: { status: M, note: 'IMPLEMENTATION DEFINED; reads 0.' },
  IDR5: {
    status: M,
    note: 'OAS, GRAN4K/16K/64K, VAX and STALL_MAX from the options; DS and D128 read 0.',
  },
  IIDR: { status: M, note: 'Implementer, Revision, Variant and ProductID from `options.iidr`.' },
  AIDR: {
    status: M,
    note: 'ArchMajorRev 0, ArchMinorRev 1 (SMMUv3.1, the default) or 0 (`archVersion: "3.0"`).',
  },
  CR0: {
    status: M,
    note: 'SMMUEN (translate, or GBPA while 0), CMDQEN, EVENTQEN and PRIQEN act; ATSCHK is writable with ATS but has no effect (ATS Translated traffic is not modelled); VMW and DPT_WALK_EN are RES0.',
  },
  CR0ACK: {
    status: M,
    note: 'Mirrors every CR0 field as soon as CR0 is written (no Update delay); the queues and the translation pipeline act on it.',
  },
  CR1: {
    status: C,
    note: `RW with the Guarded rule (TABLE_* by SMMUEN, QUEUE_* by the queue enables); the cacheability and shareability it sets have no effect: ${NO_ATTRS}.`,
  },
  CR2: {
    status: M,
    note: 'RW, Guarded by SMMUEN. RECINVSID acts: C_BAD_STREAMID is recorded only when it is 1 (the transaction is terminated either way). E2H is RES0 (IDR0.Hyp == 0; with Hyp it would select NS-EL2-E2H for STRW == EL2), PTM and REC_CFG_ATS are RES0 (IDR0.BTM == 0, IDR0.ATSRECERR == 0).',
  },
  STATUSR: { status: M, note: 'Reads 0: DORMANT is never set (IDR0.DORMHINT == 0).' },
  GBPA: {
    status: M,
    note: `An Update completes at once (a write with Update == 0 is ignored); ABORT aborts transactions while SMMUEN == 0, otherwise they bypass (an input beyond the OAS aborts without an event, §3.4); MemAttr/MTCFG/ALLOCCFG/SHCFG/PRIVCFG/INSTCFG are stored but have no effect: ${NO_ATTRS}.`,
  },
  AGBPA: { status: M, note: 'RES0: the model has no IMPLEMENTATION DEFINED attributes.' },
  IRQ_CTRL: {
    status: M,
    note: 'GERROR_IRQEN, EVENTQ_IRQEN and PRIQ_IRQEN (with PRI) enable their source (wired line and MSI); acknowledged in IRQ_CTRLACK at once.',
  },
  IRQ_CTRLACK: { status: M, note: 'Mirrors IRQ_CTRL at once; interrupt delivery acts on it.' },
  GERROR: {
    status: M,
    note: 'The SMMU toggles CMDQ_ERR, EVENTQ_ABT_ERR, PRIQ_ABT_ERR and MSI_*_ABT_ERR (each only while inactive) and raises the GERROR interrupt; SFM_ERR is never raised (no service failure mode); CMDQP_ERR and DPT_ERR are RES0.',
  },
  GERRORN: {
    status: M,
    note: 'Software acknowledges an error by toggling its bit to match GERROR; acknowledging CMDQ_ERR restarts command consumption.',
  },
  GERROR_IRQ_CFG0: {
    status: M,
    note: 'ADDR of the GERROR MSI (0: no MSI is sent); Guarded by IRQ_CTRL.GERROR_IRQEN.',
  },
  GERROR_IRQ_CFG1: { status: M, note: 'DATA of the GERROR MSI; Guarded by IRQ_CTRL.GERROR_IRQEN.' },
  GERROR_IRQ_CFG2: {
    status: C,
    note: `RW, Guarded by IRQ_CTRL.GERROR_IRQEN; MemAttr and SH of the MSI write have no effect: ${NO_ATTRS}.`,
  },
  STRTAB_BASE: {
    status: M,
    note: 'ADDR locates the Stream table; RA is stored with no effect; Guarded by SMMUEN.',
  },
  STRTAB_BASE_CFG: {
    status: M,
    note: 'LOG2SIZE (with IDR1.SIDSIZE) bounds StreamIDs; FMT selects linear or 2-level; SPLIT 6, 8 or 10 (reserved values act as 6); Guarded by SMMUEN.',
  },
  CMDQ_BASE: {
    status: M,
    note: 'ADDR and LOG2SIZE (capped at IDR1.CMDQS) locate the Command queue; RA is stored with no effect; Guarded by CMDQEN.',
  },
  CMDQ_PROD: { status: M, note: 'A write makes the SMMU consume every command up to WR, synchronously.' },
  CMDQ_CONS: {
    status: M,
    note: 'RD advances as each command completes; ERR takes CERROR_ILL or CERROR_ABT and stops the queue (CERROR_ATC_INV_SYNC is never produced); Guarded by CMDQEN.',
  },
  EVENTQ_BASE: {
    status: M,
    note: 'ADDR and LOG2SIZE (capped at IDR1.EVENTQS) locate the Event queue; WA is stored with no effect; Guarded by EVENTQEN.',
  },
  EVENTQ_PROD: {
    status: M,
    note: 'WR advances after each record is written; OVFLG toggles when a record is lost to a full queue; Guarded by EVENTQEN.',
  },
  EVENTQ_CONS: {
    status: M,
    note: 'RD frees entries; OVACKFLG acknowledges an overflow.',
  },
  EVENTQ_IRQ_CFG0: {
    status: M,
    note: 'ADDR of the Event queue MSI (0: no MSI); Guarded by IRQ_CTRL.EVENTQ_IRQEN.',
  },
  EVENTQ_IRQ_CFG1: { status: M, note: 'DATA of the Event queue MSI; Guarded by IRQ_CTRL.EVENTQ_IRQEN.' },
  EVENTQ_IRQ_CFG2: {
    status: C,
    note: `RW, Guarded by IRQ_CTRL.EVENTQ_IRQEN; MemAttr and SH have no effect: ${NO_ATTRS}.`,
  },
  PRIQ_BASE: {
    status: M,
    note: 'ADDR and LOG2SIZE (capped at IDR1.PRIQS) locate the PRI queue; WA is stored with no effect; Guarded by PRIQEN.',
  },
  PRIQ_PROD: {
    status: M,
    note: 'WR advances after each request is written; OVFLG toggles on overflow, and requests are discarded until software acknowledges it; Guarded by PRIQEN.',
  },
  PRIQ_CONS: { status: M, note: 'RD frees entries; OVACKFLG acknowledges an overflow.' },
  PRIQ_IRQ_CFG0: {
    status: M,
    note: 'ADDR of the PRI queue MSI (0: no MSI); Guarded by IRQ_CTRL.PRIQ_IRQEN.',
  },
  PRIQ_IRQ_CFG1: { status: M, note: 'DATA of the PRI queue MSI; Guarded by IRQ_CTRL.PRIQ_IRQEN.' },
  PRIQ_IRQ_CFG2: {
    status: M,
    note: `LO: interrupt only for requests with Last set (wired line and MSI); MemAttr and SH (with MSI) have no effect: ${NO_ATTRS}.`,
  },
};

const notPresent = (why: string) => `Not present: ${why}; the offset reads as zero and ignores writes.`;
const SECURE = notPresent('no Secure programming interface (SMMU_S_IDR1.SECURE_IMPL == 0)');

/** Registers of the spec's register map (§6.2) that `REG` does not list. */
export const SPEC_ONLY_REGISTERS: readonly SpecOnlyRegister[] = [
  {
    name: 'S2PII',
    offset: '0x0030',
    status: N,
    note: notPresent('no stage 2 permission indirection (IDR3.S2PI == 0)'),
  },
  {
    name: 'EVENTQ_PROD (page 0 alias)',
    offset: '0x00A8',
    status: M,
    note: 'RAZ/WI, one of the two behaviours the spec permits for the page 0 alias.',
  },
  { name: 'EVENTQ_CONS (page 0 alias)', offset: '0x00AC', status: M, note: 'RAZ/WI (permitted).' },
  { name: 'PRIQ_PROD (page 0 alias)', offset: '0x00C8', status: M, note: 'RAZ/WI (permitted).' },
  { name: 'PRIQ_CONS (page 0 alias)', offset: '0x00CC', status: M, note: 'RAZ/WI (permitted).' },
  { name: 'GATOS_CTRL', offset: '0x0100', status: N, note: notPresent('no ATOS (IDR0.ATOS == 0)') },
  { name: 'GATOS_SID', offset: '0x0108', status: N, note: notPresent('no ATOS (IDR0.ATOS == 0)') },
  { name: 'GATOS_ADDR', offset: '0x0110', status: N, note: notPresent('no ATOS (IDR0.ATOS == 0)') },
  { name: 'GATOS_PAR', offset: '0x0118', status: N, note: notPresent('no ATOS (IDR0.ATOS == 0)') },
  { name: 'MPAMIDR', offset: '0x0130', status: N, note: notPresent('no MPAM (IDR3.MPAM == 0)') },
  { name: 'GMPAM', offset: '0x0138', status: N, note: notPresent('no MPAM (IDR3.MPAM == 0)') },
  { name: 'GBPMPAM', offset: '0x013C', status: N, note: notPresent('no MPAM (IDR3.MPAM == 0)') },
  { name: 'VATOS_SEL', offset: '0x0180', status: N, note: notPresent('no VATOS (IDR0.VATOS == 0)') },
  {
    name: 'IDR6',
    offset: '0x0190',
    status: N,
    note: notPresent('no Enhanced Command queues (IDR1.ECMDQ == 0)'),
  },
  {
    name: 'DPT_BASE',
    offset: '0x0200',
    status: N,
    note: notPresent('no Device Permission Table (IDR3.DPT == 0)'),
  },
  {
    name: 'DPT_BASE_CFG',
    offset: '0x0208',
    status: N,
    note: notPresent('no Device Permission Table (IDR3.DPT == 0)'),
  },
  {
    name: 'DPT_CFG_FAR',
    offset: '0x0210',
    status: N,
    note: notPresent('no Device Permission Table (IDR3.DPT == 0)'),
  },
  {
    name: 'IMPLEMENTATION DEFINED',
    offset: '0x0E00–0x0EFF, 0x1000–0x3FFF',
    status: N,
    note: notPresent('the model defines no IMPLEMENTATION DEFINED registers'),
  },
  {
    name: 'ID_REGS',
    offset: '0x0FD0–0x0FFC',
    status: N,
    note: notPresent('IMPLEMENTATION DEFINED identification space, left empty'),
  },
  {
    name: 'CMDQ_CONTROL_PAGE_BASEn',
    offset: '0x4000 + 32n',
    status: N,
    note: notPresent('no Enhanced Command queues (IDR1.ECMDQ == 0)'),
  },
  {
    name: 'CMDQ_CONTROL_PAGE_CFGn',
    offset: '0x4008 + 32n',
    status: N,
    note: notPresent('no Enhanced Command queues (IDR1.ECMDQ == 0)'),
  },
  {
    name: 'CMDQ_CONTROL_PAGE_STATUSn',
    offset: '0x400C + 32n',
    status: N,
    note: notPresent('no Enhanced Command queues (IDR1.ECMDQ == 0)'),
  },
  { name: 'S_IDR0', offset: '0x8000', status: N, note: SECURE },
  { name: 'S_IDR1', offset: '0x8004', status: N, note: SECURE },
  { name: 'S_IDR2', offset: '0x8008', status: N, note: SECURE },
  { name: 'S_IDR3', offset: '0x800C', status: N, note: SECURE },
  { name: 'S_IDR4', offset: '0x8010', status: N, note: SECURE },
  { name: 'S_CR0', offset: '0x8020', status: N, note: SECURE },
  { name: 'S_CR0ACK', offset: '0x8024', status: N, note: SECURE },
  { name: 'S_CR1', offset: '0x8028', status: N, note: SECURE },
  { name: 'S_CR2', offset: '0x802C', status: N, note: SECURE },
  { name: 'S_S2PII', offset: '0x8030', status: N, note: SECURE },
  { name: 'S_INIT', offset: '0x803C', status: N, note: SECURE },
  { name: 'S_GBPA', offset: '0x8044', status: N, note: SECURE },
  { name: 'S_AGBPA', offset: '0x8048', status: N, note: SECURE },
  { name: 'S_IRQ_CTRL', offset: '0x8050', status: N, note: SECURE },
  { name: 'S_IRQ_CTRLACK', offset: '0x8054', status: N, note: SECURE },
  { name: 'S_GERROR', offset: '0x8060', status: N, note: SECURE },
  { name: 'S_GERRORN', offset: '0x8064', status: N, note: SECURE },
  { name: 'S_GERROR_IRQ_CFG0', offset: '0x8068', status: N, note: SECURE },
  { name: 'S_GERROR_IRQ_CFG1', offset: '0x8070', status: N, note: SECURE },
  { name: 'S_GERROR_IRQ_CFG2', offset: '0x8074', status: N, note: SECURE },
  { name: 'S_STRTAB_BASE', offset: '0x8080', status: N, note: SECURE },
  { name: 'S_STRTAB_BASE_CFG', offset: '0x8088', status: N, note: SECURE },
  { name: 'S_CMDQ_BASE', offset: '0x8090', status: N, note: SECURE },
  { name: 'S_CMDQ_PROD', offset: '0x8098', status: N, note: SECURE },
  { name: 'S_CMDQ_CONS', offset: '0x809C', status: N, note: SECURE },
  { name: 'S_EVENTQ_BASE', offset: '0x80A0', status: N, note: SECURE },
  { name: 'S_EVENTQ_PROD', offset: '0x80A8', status: N, note: SECURE },
  { name: 'S_EVENTQ_CONS', offset: '0x80AC', status: N, note: SECURE },
  { name: 'S_EVENTQ_IRQ_CFG0', offset: '0x80B0', status: N, note: SECURE },
  { name: 'S_EVENTQ_IRQ_CFG1', offset: '0x80B8', status: N, note: SECURE },
  { name: 'S_EVENTQ_IRQ_CFG2', offset: '0x80BC', status: N, note: SECURE },
  { name: 'S_GATOS_CTRL', offset: '0x8100', status: N, note: SECURE },
  { name: 'S_GATOS_SID', offset: '0x8108', status: N, note: SECURE },
  { name: 'S_GATOS_ADDR', offset: '0x8110', status: N, note: SECURE },
  { name: 'S_GATOS_PAR', offset: '0x8118', status: N, note: SECURE },
  { name: 'S_MPAMIDR', offset: '0x8130', status: N, note: SECURE },
  { name: 'S_GMPAM', offset: '0x8138', status: N, note: SECURE },
  { name: 'S_GBPMPAM', offset: '0x813C', status: N, note: SECURE },
  { name: 'S_VATOS_SEL', offset: '0x8180', status: N, note: SECURE },
  { name: 'S_IDR6', offset: '0x8190', status: N, note: SECURE },
  {
    name: 'IMPLEMENTATION DEFINED, Secure',
    offset: '0x8E00–0x8EFF, 0x9000–0xBFFF',
    status: N,
    note: SECURE,
  },
  { name: 'S_CMDQ_CONTROL_PAGE_BASEn', offset: '0xC000 + 32n', status: N, note: SECURE },
  { name: 'S_CMDQ_CONTROL_PAGE_CFGn', offset: '0xC008 + 32n', status: N, note: SECURE },
  { name: 'S_CMDQ_CONTROL_PAGE_STATUSn', offset: '0xC00C + 32n', status: N, note: SECURE },
  {
    name: 'VATOS page: VATOS_CTRL, VATOS_SID, VATOS_ADDR, VATOS_PAR',
    offset: 'VATOS page + 0x0A00–0x0A18',
    status: N,
    note: 'No VATOS page (IDR0.VATOS == 0); outside the 128 KiB register window the model maps.',
  },
  {
    name: 'S_VATOS page: S_VATOS_CTRL, S_VATOS_SID, S_VATOS_ADDR, S_VATOS_PAR',
    offset: 'S_VATOS page + 0x0A00–0x0A18',
    status: N,
    note: 'No Secure state and no VATOS; outside the register window the model maps.',
  },
  {
    name: 'Command queue control pages: ECMDQ_BASEn, ECMDQ_PRODn, ECMDQ_CONSn',
    offset: 'control page + 0x00/0x08/0x0C per ECMDQ',
    status: N,
    note: 'No Enhanced Command queues (IDR1.ECMDQ == 0).',
  },
  {
    name: 'Realm pages 0 and 1: SMMU_R_*',
    offset: 'Realm page 0/1 (RME)',
    status: N,
    note: 'No Realm Management Extension (IDR0.RME_IMPL == 0).',
  },
  {
    name: 'Root Control Page: SMMU_ROOT_*',
    offset: 'Root Control Page (RME)',
    status: N,
    note: 'No Realm Management Extension (IDR0.RME_IMPL == 0).',
  },
];

// ---------------------------------------------------------------------------------------------------------
// STE fields (§5.2). The model decodes qwords 0–3.

const RES0_HYP = 'RES0: IDR0.Hyp == 0, so every Non-secure stage-1 StreamWorld is NS-EL1';

export const STE_FIELD_COVERAGE: Readonly<Record<keyof Ste, FieldCoverage>> = {
  v: {
    spec: 'V',
    status: M,
    note: 'V == 0: the transaction aborts with C_BAD_STE; an ATS Translation Request fails without an event.',
  },
  config: {
    spec: 'Config',
    status: M,
    note: 'Abort (no event; reserved 0b001–0b011 too), bypass, stage 1, stage 2 or nested; a stage the IDRs lack is C_BAD_STE. A SubstreamID on a bypass STE is C_BAD_SUBSTREAMID.',
  },
  s1Fmt: {
    spec: 'S1Fmt',
    status: M,
    note: 'Linear or 2-level (4 KiB or 64 KiB leaves) CD table; 2-level needs IDR0.CD2L (else C_BAD_STE); 0b11 acts as linear.',
  },
  s1ContextPtr: {
    spec: 'S1ContextPtr',
    status: M,
    note: 'CD (or L1CD) table address: a PA, or an IPA translated by stage 2 when nested; beyond the OAS/IAS is C_BAD_STE.',
  },
  s1CdMax: {
    spec: 'S1CDMax',
    status: M,
    note: '2^S1CDMax CDs; 0 disables substreams (a SubstreamID gets C_BAD_SUBSTREAMID); above IDR1.SSIDSIZE is C_BAD_STE.',
  },
  s1Dss: {
    spec: 'S1DSS',
    status: M,
    note: 'No SubstreamID with S1CDMax > 0: terminate (F_STREAM_DISABLED; reserved 0b11 too), bypass stage 1, or use CD 0 — and then a transaction with SubstreamID 0 is F_STREAM_DISABLED, CD 0 being reserved for traffic without one.',
  },
  s1Cir: { spec: 'S1CIR', status: N, note: `CD fetch attribute: ${NO_ATTRS}.` },
  s1Cor: { spec: 'S1COR', status: N, note: `CD fetch attribute: ${NO_ATTRS}.` },
  s1Csh: { spec: 'S1CSH', status: N, note: `CD fetch attribute: ${NO_ATTRS}.` },
  s2Hwu59: {
    spec: 'S2HWU59',
    status: N,
    note: 'IGNORED: no page-based hardware attributes (IDR3.PBHA == 0).',
  },
  s2Hwu60: { spec: 'S2HWU60', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  s2Hwu61: { spec: 'S2HWU61', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  s2Hwu62: { spec: 'S2HWU62', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  dre: {
    spec: 'DRE',
    status: N,
    note: 'IGNORED: the model has no destructive-read or cache maintenance transactions.',
  },
  cont: {
    spec: 'CONT',
    status: N,
    note: 'A caching hint: each StreamID uses its own STE, one of the behaviours the spec permits.',
  },
  dcp: { spec: 'DCP', status: N, note: 'IGNORED: the model has no directed cache prefetch transactions.' },
  ppar: {
    spec: 'PPAR',
    status: N,
    note: 'Auto-generated PRI responses always carry the request PASID, whatever PPAR says.',
  },
  mev: {
    spec: 'MEV',
    status: N,
    note: 'Event records are never merged, which the spec permits for either value.',
  },
  swReserved: { spec: 'SW_RESERVED', status: M, note: 'IGNORED by the SMMU, as the spec defines it.' },
  s1Pie: { spec: 'S1PIE', status: N, note: 'RES0: no stage 1 permission indirection (IDR3.S1PI == 0).' },
  s2Fwb: {
    spec: 'S2FWB',
    status: N,
    note: `RES0 (IDR3.FWB == 0); stage 2 memory types would need attributes: ${NO_ATTRS}.`,
  },
  s1Mpam: { spec: 'S1MPAM', status: N, note: 'RES0: no MPAM (IDR3.MPAM == 0).' },
  s1Stalld: {
    spec: 'S1STALLD',
    status: M,
    note: 'ILLEGAL unless STALL_MODEL == 0b00; with it set, a CD with S == 1 is C_BAD_CD, so stage 1 faults never stall.',
  },
  eats: {
    spec: 'EATS',
    status: M,
    note: 'ATS Translation Requests: 0b00 and 0b11 (DPT not implemented: as 0b00) refused with F_BAD_ATS_TREQ, 0b01 full ATS; 0b10 (split stage) is ILLEGAL as IDR0.NS1ATS == 1; the other ILLEGAL rules are checked. ATS Translated transactions do not reach the model, so CR0.ATSCHK has nothing to check.',
  },
  strw: {
    spec: 'STRW',
    status: N,
    note: `${RES0_HYP} (\`checkSte\` has the STRW rule for Hyp == 1 configurations).`,
  },
  memAttr: { spec: 'MemAttr', status: N, note: `RES0: IDR1.ATTR_TYPES_OVR == 0, and ${NO_ATTRS}.` },
  mtcfg: { spec: 'MTCFG', status: N, note: `RES0: IDR1.ATTR_TYPES_OVR == 0, and ${NO_ATTRS}.` },
  allocCfg: { spec: 'ALLOCCFG', status: N, note: `RES0: IDR1.ATTR_TYPES_OVR == 0, and ${NO_ATTRS}.` },
  shCfg: { spec: 'SHCFG', status: N, note: `RES0: IDR1.ATTR_TYPES_OVR == 0, and ${NO_ATTRS}.` },
  nsCfg: {
    spec: 'NSCFG',
    status: N,
    note: 'IGNORED for the Non-secure Stream table (the only one modelled).',
  },
  privCfg: {
    spec: 'PRIVCFG',
    status: N,
    note: 'RES0: IDR1.ATTR_PERMS_OVR == 0, so the incoming privilege is used: Unprivileged for a transaction without a SubstreamID (PCIe without a PASID, §13.7).',
  },
  instCfg: {
    spec: 'INSTCFG',
    status: N,
    note: 'RES0: IDR1.ATTR_PERMS_OVR == 0, so the incoming instruction/data attribute is used: Data for a write and for a transaction without a SubstreamID (PCIe without a PASID, §13.7).',
  },
  s2Vmid: {
    spec: 'S2VMID',
    status: M,
    note: 'Tags stage-1, stage-2 and nested TLB entries for VMID-scoped TLBIs; bits [15:8] without VMID16 are C_BAD_STE.',
  },
  s2T0sz: {
    spec: 'S2T0SZ',
    status: M,
    note: 'Stage 2 input size; outside [MAX(16 or 12, 64 − IAS), 39] or inconsistent with S2SL0/S2TG is C_BAD_STE.',
  },
  s2Sl0: {
    spec: 'S2SL0',
    status: M,
    note: 'Stage 2 start level; reserved or inconsistent values are C_BAD_STE.',
  },
  s2Ir0: { spec: 'S2IR0', status: N, note: `Stage 2 walk attribute: ${NO_ATTRS}.` },
  s2Or0: { spec: 'S2OR0', status: N, note: `Stage 2 walk attribute: ${NO_ATTRS}.` },
  s2Sh0: { spec: 'S2SH0', status: N, note: `Stage 2 walk attribute: ${NO_ATTRS}.` },
  s2Tg: {
    spec: 'S2TG',
    status: M,
    note: 'Stage 2 granule; reserved 0b11 or a granule IDR5 lacks is C_BAD_STE.',
  },
  s2Ps: {
    spec: 'S2PS',
    status: M,
    note: 'Stage 2 output size, capped at the OAS (reserved values too); drives address size faults and the S2TTB range check.',
  },
  s2Aa64: {
    spec: 'S2AA64',
    status: C,
    note: '0 (VMSAv8-32 LPAE) is C_BAD_STE: only VMSAv8-64 tables are implemented (IDR0.TTF == 0b10).',
  },
  s2Endi: {
    spec: 'S2ENDI',
    status: C,
    note: 'Big-endian (1) is C_BAD_STE: tables are little-endian only (IDR0.TTENDIAN == 0b10).',
  },
  s2Affd: {
    spec: 'S2AFFD',
    status: M,
    note: 'With S2HA == 0 (or no HTTU), 0: an Access flag of 0 at stage 2 is F_ACCESS; 1: it is used as 1 (not written). Also for the stage-2 translation of CD and stage-1 table fetches. IGNORED with S2HA == 1.',
  },
  s2Ptw: { spec: 'S2PTW', status: N, note: `Needs Device memory types at stage 2: ${NO_ATTRS}.` },
  s2Hd: {
    spec: 'S2HD',
    status: M,
    note: 'Hardware dirty-state update at stage 2 (IDR0.HTTU == 0b10, else C_BAD_STE). {S2HA, S2HD} = 0b01 acts as 0b00, as the spec says.',
  },
  s2Ha: {
    spec: 'S2HA',
    status: M,
    note: 'Hardware Access flag update at stage 2 (needs IDR0.HTTU != 0, else C_BAD_STE).',
  },
  s2S: {
    spec: 'S2S',
    status: M,
    note: 'Stage 2 translation-related faults (also on stage-1 walks and CD fetches) stall; ILLEGAL against STALL_MODEL and EATS.',
  },
  s2R: {
    spec: 'S2R',
    status: M,
    note: 'Whether stage 2 translation faults are recorded in the Event queue.',
  },
  s2Haft: { spec: 'S2HAFT', status: N, note: 'RES0: IDR0.HTTU != 0b11.' },
  s2Pie: { spec: 'S2PIE', status: N, note: 'RES0: no stage 2 permission indirection (IDR3.S2PI == 0).' },
  s2Poe: { spec: 'S2POE', status: N, note: 'RES0: no stage 2 permission overlays (IDR3.S2PO == 0).' },
  dptVmatch: { spec: 'DPT_VMATCH', status: N, note: 'RES0: no Device Permission Table (IDR3.DPT == 0).' },
  s2Nsw: { spec: 'S2NSW', status: N, note: 'RES0 outside the Secure Stream table.' },
  s2Nsa: { spec: 'S2NSA', status: N, note: 'RES0 outside the Secure Stream table.' },
  s2Sl0Bit2: {
    spec: 'S2SL0_2',
    status: N,
    note: 'RES0: no 52-bit addresses with 4K/16K granules (IDR5.DS == 0).',
  },
  s2Ds: { spec: 'S2DS', status: N, note: 'RES0: IDR5.DS == 0 (the S2TTB 48-bit check treats it as 0).' },
  s2Ttb: {
    spec: 'S2TTB',
    status: M,
    note: 'Stage 2 table base; outside the effective S2PS, or above 48 bits with a 4K/16K granule, is C_BAD_STE.',
  },
  s2Skl: { spec: 'S2SKL', status: N, note: 'RES0: no VMSAv9-128 tables (IDR5.D128 == 0).' },
};

const MPAM = 'RES0: no MPAM (IDR3.MPAM == 0).';
const SECURE_STE = 'Secure STEs only (no Secure Stream table is modelled); RES0 in a Non-secure STE.';

/** STE fields in bits the model does not decode (§5.2). Every other undecoded bit is RES0. */
export const STE_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'IMPLEMENTATION DEFINED', msb: 127, lsb: 116, status: N, note: 'None defined by the model.' },
  { spec: 'IMPLEMENTATION DEFINED', msb: 159, lsb: 144, status: N, note: 'None defined by the model.' },
  { spec: 'IMPLEMENTATION DEFINED', msb: 271, lsb: 256, status: N, note: 'None defined by the model.' },
  { spec: 'PARTID', msb: 287, lsb: 272, status: N, note: MPAM },
  { spec: 'S_S2T0SZ', msb: 293, lsb: 288, status: N, note: SECURE_STE },
  { spec: 'S_S2SL0', msb: 295, lsb: 294, status: N, note: SECURE_STE },
  { spec: 'S_S2TG', msb: 303, lsb: 302, status: N, note: SECURE_STE },
  {
    spec: 'MECID',
    msb: 319,
    lsb: 304,
    status: N,
    note: 'Realm STEs only (no RME); RES0 in a Non-secure STE.',
  },
  { spec: 'PMG', msb: 327, lsb: 320, status: N, note: MPAM },
  { spec: 'MPAM_NS', msb: 328, lsb: 328, status: N, note: 'RES0 in a Non-secure STE.' },
  { spec: 'AssuredOnly', msb: 329, lsb: 329, status: N, note: 'RES0: IDR3.THE == 0.' },
  { spec: 'TL0', msb: 330, lsb: 330, status: N, note: 'RES0: IDR3.THE == 0.' },
  { spec: 'TL1', msb: 331, lsb: 331, status: N, note: 'RES0: IDR3.THE == 0.' },
  { spec: 'VMSPtr', msb: 375, lsb: 332, status: N, note: 'RES0: no Virtual Machine Structure (no MPAM).' },
  { spec: 'S2SW', msb: 384, lsb: 384, status: N, note: SECURE_STE },
  { spec: 'S2SA', msb: 385, lsb: 385, status: N, note: SECURE_STE },
  { spec: 'S_S2SL0_2', msb: 386, lsb: 386, status: N, note: SECURE_STE },
  { spec: 'S_S2TTB', msb: 439, lsb: 388, status: N, note: SECURE_STE },
  { spec: 'S_S2SKL', msb: 446, lsb: 445, status: N, note: SECURE_STE },
  {
    spec: 'S2POI<p>',
    msb: 511,
    lsb: 448,
    status: N,
    note: 'RES0: no stage 2 permission overlays (IDR3.S2PO == 0).',
  },
];

// ---------------------------------------------------------------------------------------------------------
// CD fields (§5.4). The model decodes qwords 0–4.

const TTB1 = 'TTB1 is never walked: an input address above the T0SZ range takes a translation fault';

export const CD_FIELD_COVERAGE: Readonly<Record<keyof Cd, FieldCoverage>> = {
  t0sz: {
    spec: 'T0SZ',
    status: M,
    note: 'TTB0 input size; outside [16, 39] is C_BAD_CD (also with IDR5.VAX == 1, where the spec allows 12 for 64 KiB).',
  },
  tg0: { spec: 'TG0', status: M, note: 'TTB0 granule; reserved or not in IDR5 is C_BAD_CD.' },
  ir0: { spec: 'IR0', status: N, note: `TTB0 walk attribute: ${NO_ATTRS}.` },
  or0: { spec: 'OR0', status: N, note: `TTB0 walk attribute: ${NO_ATTRS}.` },
  sh0: { spec: 'SH0', status: N, note: `TTB0 walk attribute: ${NO_ATTRS}.` },
  epd0: {
    spec: 'EPD0',
    status: M,
    note: '1: no TTB0 walk, a TLB miss is F_TRANSLATION, and the TTB0 controls are not checked; IGNORED (0) for an NS-EL2 stream.',
  },
  endi: {
    spec: 'ENDI',
    status: C,
    note: 'Big-endian (1) is C_BAD_CD unless both TTBs are disabled (IDR0.TTENDIAN == 0b10).',
  },
  t1sz: { spec: 'T1SZ', status: C, note: `Range-checked like T0SZ when EPD1 == 0; ${TTB1}.` },
  tg1: {
    spec: 'TG1',
    status: C,
    note: `Reserved (0b00) or not in IDR5 is C_BAD_CD when EPD1 == 0 (TG1's own encoding); ${TTB1}.`,
  },
  ir1: { spec: 'IR1', status: N, note: `TTB1 walk attribute (TTB1 is never walked): ${NO_ATTRS}.` },
  or1: { spec: 'OR1', status: N, note: `TTB1 walk attribute (TTB1 is never walked): ${NO_ATTRS}.` },
  sh1: { spec: 'SH1', status: N, note: `TTB1 walk attribute (TTB1 is never walked): ${NO_ATTRS}.` },
  epd1: {
    spec: 'EPD1',
    status: C,
    note: `0 makes the TTB1 controls subject to the ILLEGAL checks; ${TTB1} either way.`,
  },
  v: { spec: 'V', status: M, note: 'V == 0: the transaction aborts with C_BAD_CD.' },
  ips: {
    spec: 'IPS',
    status: M,
    note: 'Stage 1 output size, capped at the OAS: address size faults and the TTB0/TTB1 range checks.',
  },
  affd: {
    spec: 'AFFD',
    status: M,
    note: 'With HA == 0 (or no HTTU), 0: an Access flag of 0 at stage 1 is F_ACCESS; 1: it is used as 1 (not written). IGNORED with HA == 1.',
  },
  wxn: {
    spec: 'WXN',
    status: N,
    note: 'Not implemented: instruction fetches to writable pages are not refused.',
  },
  uwxn: {
    spec: 'UWXN',
    status: M,
    note: 'IGNORED for VMSAv8-64 tables, the only format implemented, as the spec defines it.',
  },
  tbi0: {
    spec: 'TBI0',
    status: N,
    note: 'Not implemented: a non-zero top byte is part of the address (translation fault).',
  },
  tbi1: { spec: 'TBI1', status: N, note: `Not implemented; ${TTB1}.` },
  pan: {
    spec: 'PAN',
    status: N,
    note: 'Not implemented: privileged accesses to user pages are not refused.',
  },
  aa64: {
    spec: 'AA64',
    status: C,
    note: '0 (VMSAv8-32 LPAE) is C_BAD_CD: only VMSAv8-64 tables are implemented (IDR0.TTF == 0b10).',
  },
  hd: {
    spec: 'HD',
    status: M,
    note: 'Hardware dirty-state update (IDR0.HTTU == 0b10, else C_BAD_CD). {HD, HA} = 0b10 acts as 0b00, as the spec says.',
  },
  ha: {
    spec: 'HA',
    status: M,
    note: 'Hardware Access flag update (needs IDR0.HTTU != 0, else C_BAD_CD). Nested, the update writes the descriptor’s IPA: without stage-2 write permission it is a stage-2 F_PERMISSION (CLASS TT) and nothing is written.',
  },
  s: {
    spec: 'S',
    status: M,
    note: 'Stage 1 translation-related faults stall (the record is written whatever R says); ILLEGAL against STALL_MODEL and STE.S1STALLD.',
  },
  r: { spec: 'R', status: M, note: 'Whether stage 1 translation faults are recorded in the Event queue.' },
  a: {
    spec: 'A',
    status: C,
    note: 'Must be 1 (IDR0.TERM_MODEL == 1, else C_BAD_CD): terminated transactions always abort.',
  },
  aset: {
    spec: 'ASET',
    status: N,
    note: 'Only affects broadcast TLB maintenance (IDR0.BTM == 0); global TLB entries are not tagged with it.',
  },
  asid: {
    spec: 'ASID',
    status: M,
    note: 'Tags non-global stage-1 and nested TLB entries for ASID-scoped TLBIs; bits [15:8] without ASID16 are C_BAD_CD.',
  },
  nscfg0: { spec: 'NSCFG0', status: N, note: 'IGNORED: used only for CDs reached from Secure STEs.' },
  had0: {
    spec: 'HAD0',
    status: M,
    note: 'Disables the hierarchical (table descriptor) permission limits for TTB0 walks. DisCH0 when IDR5.D128 == 1.',
  },
  e0pd0: { spec: 'E0PD0', status: N, note: 'RES0: IDR3.E0PD == 0.' },
  haft: { spec: 'HAFT', status: N, note: 'RES0: IDR0.HTTU != 0b11.' },
  ttb0: {
    spec: 'TTB0',
    status: M,
    note: 'Stage 1 table base (an IPA when nested); outside the effective IPS, or above 48 bits with a 4K/16K granule, is C_BAD_CD.',
  },
  pnch: { spec: 'PnCH', status: N, note: 'RES0: IDR3.THE == 0.' },
  epan: { spec: 'EPAN', status: N, note: 'RES0: IDR3.EPAN == 0.' },
  hwu059: { spec: 'HWU059', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  hwu060: { spec: 'HWU060', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  hwu061: { spec: 'HWU061', status: N, note: 'IGNORED: IDR3.PBHA == 0 (SKL0[0] when IDR5.D128 == 1).' },
  hwu062: { spec: 'HWU062', status: N, note: 'IGNORED: IDR3.PBHA == 0 (SKL0[1] when IDR5.D128 == 1).' },
  nscfg1: { spec: 'NSCFG1', status: N, note: 'IGNORED: used only for CDs reached from Secure STEs.' },
  had1: { spec: 'HAD1', status: N, note: `${TTB1}, so it has nothing to apply to.` },
  e0pd1: { spec: 'E0PD1', status: N, note: 'RES0: IDR3.E0PD == 0.' },
  aie: { spec: 'AIE', status: N, note: 'RES0: IDR3.AIE == 0.' },
  ttb1: {
    spec: 'TTB1',
    status: C,
    note: `Range-checked like TTB0 when EPD1 == 0; ${TTB1}.`,
  },
  ds: { spec: 'DS', status: N, note: 'RES0: IDR5.DS == 0 (the 48-bit TTB checks treat it as 0).' },
  pie: { spec: 'PIE', status: N, note: 'RES0: no stage 1 permission indirection (IDR3.S1PI == 0).' },
  hwu159: { spec: 'HWU159', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  hwu160: { spec: 'HWU160', status: N, note: 'IGNORED: IDR3.PBHA == 0.' },
  hwu161: { spec: 'HWU161', status: N, note: 'IGNORED: IDR3.PBHA == 0 (SKL1[0] when IDR5.D128 == 1).' },
  hwu162: { spec: 'HWU162', status: N, note: 'IGNORED: IDR3.PBHA == 0 (SKL1[1] when IDR5.D128 == 1).' },
  mair0: { spec: 'MAIR0', status: N, note: `Stage 1 memory types: ${NO_ATTRS}.` },
  mair1: { spec: 'MAIR1', status: N, note: `Stage 1 memory types: ${NO_ATTRS}.` },
  amair0: { spec: 'AMAIR0', status: N, note: 'IMPLEMENTATION DEFINED; the model defines no use.' },
  amair1: { spec: 'AMAIR1', status: N, note: 'IMPLEMENTATION DEFINED; the model defines no use.' },
};

/** CD fields in bits the model does not decode (§5.4). Every other undecoded bit is RES0. */
export const CD_SPEC_ONLY_FIELDS: readonly SpecOnlyField[] = [
  { spec: 'IMPLEMENTATION DEFINED', msb: 351, lsb: 320, status: N, note: 'None defined by the model.' },
  { spec: 'PARTID', msb: 367, lsb: 352, status: N, note: MPAM },
  { spec: 'PMG', msb: 375, lsb: 368, status: N, note: MPAM },
  {
    spec: 'PIIU<p>',
    msb: 431,
    lsb: 384,
    status: N,
    note: 'RES0: no stage 1 permission indirection (IDR3.S1PI == 0).',
  },
  {
    spec: 'PIIP<p>',
    msb: 495,
    lsb: 448,
    status: N,
    note: 'RES0: no stage 1 permission indirection (IDR3.S1PI == 0).',
  },
];

// ---------------------------------------------------------------------------------------------------------
// Commands (§4). Every command is decoded with its ILL rules (`decodeCommand`); the notes say what the
// device does after that (`Smmuv3Hardware.execute`, `CommandQueue`).

const HINTS =
  'with Leaf = 0 also the stage-1 walk-cache tables covering it, with Leaf = 1 leaves only; TTL is a hint and is not used (a permitted over-invalidation)';
const SECURE_QUEUE = 'Always CERROR_ILL: valid only on the Secure Command queue, which is not modelled.';

export const COMMAND_COVERAGE: Readonly<Record<CommandCoverageName, Coverage>> = {
  PREFETCH_CONFIG: {
    status: C,
    note: 'Decoded; nothing is prefetched (a prefetch is a hint the SMMU may ignore).',
  },
  PREFETCH_ADDR: {
    status: C,
    note: 'Decoded (Stride and NS are not decoded nor reserved-checked); nothing is prefetched.',
  },
  CFGI_STE: {
    status: M,
    note: 'Drops the cached STE of StreamID and every CD cached through it; Leaf is not used (everything is dropped).',
  },
  CFGI_STE_RANGE: {
    status: M,
    note: 'Drops the cached STEs (and their CDs) of the aligned block of 2^(Range + 1) StreamIDs.',
  },
  CFGI_ALL: {
    status: M,
    note: 'CFGI_STE_RANGE with Range == 31: drops every cached STE and CD; TLB entries and walk-cache tables stay (§4.3).',
  },
  CFGI_CD: {
    status: M,
    note: 'Drops the cached CD of (StreamID, SubstreamID); Leaf is not used. L1CDs are never cached.',
  },
  CFGI_CD_ALL: { status: M, note: 'Drops every cached CD of StreamID.' },
  CFGI_VMS_PIDM: { status: C, note: 'Always CERROR_ILL: no MPAM (IDR3.MPAM == 0).' },
  TLBI_NH_ALL: {
    status: M,
    note: 'Drops the stage-1 and nested TLB entries and stage-1 walk-cache tables of VMID.',
  },
  TLBI_NH_ASID: {
    status: M,
    note: 'Drops the stage-1 and nested TLB entries and stage-1 walk-cache tables of (VMID, ASID); global entries stay.',
  },
  TLBI_NH_VA: {
    status: M,
    note: `Drops stage-1 and nested entries of VMID, for ASID or global, overlapping the address or the NUM/SCALE/TG range; ${HINTS}.`,
  },
  TLBI_NH_VAA: {
    status: M,
    note: `Drops stage-1 and nested entries of VMID, any ASID, overlapping the address or range; ${HINTS}.`,
  },
  TLBI_EL3_ALL: { status: C, note: SECURE_QUEUE },
  TLBI_EL3_VA: { status: C, note: SECURE_QUEUE },
  TLBI_EL2_ALL: { status: C, note: 'Always CERROR_ILL: IDR0.Hyp == 0 (no EL2 StreamWorlds).' },
  TLBI_EL2_ASID: { status: C, note: 'Always CERROR_ILL: IDR0.Hyp == 0.' },
  TLBI_EL2_VA: { status: C, note: 'Always CERROR_ILL: IDR0.Hyp == 0.' },
  TLBI_EL2_VAA: { status: C, note: 'Always CERROR_ILL: IDR0.Hyp == 0.' },
  TLBI_S12_VMALL: {
    status: M,
    note: 'Drops every TLB entry and walk-cache table of VMID (stage 1, stage 2 and nested).',
  },
  TLBI_S2_IPA: {
    status: M,
    note: 'Drops stage-2-only entries of VMID overlapping the IPA or range, and with Leaf = 0 the stage-2 walk-cache tables covering it; nested entries stay (software follows with TLBI_NH_ALL); TTL is a hint and is not used (a permitted over-invalidation).',
  },
  TLBI_NSNH_ALL: { status: M, note: 'Drops every TLB entry and walk-cache table.' },
  ATC_INV: {
    status: M,
    note: 'Sends the ATS Invalidation Request (span aligned to 2^Size pages, Size ≥ 52: everything) to the endpoint: without SSV it hits every PASID in the range (a request without a PASID prefix); with SSV the SubstreamID only, or every PASID with Global (the endpoint ATC keeps no global flag, a permitted over-invalidation). IGNORED while SMMUEN == 0.',
  },
  PRI_RESP: {
    status: M,
    note: 'Delivers the PRG response (Success, InvalidRequest or ResponseFailure) to the endpoint; Resp 0b11 is CERROR_ILL.',
  },
  RESUME: {
    status: M,
    note: 'The stalled transaction with this StreamID and STAG is retried as a new transaction (it may complete, terminate or stall again) or terminated with an abort; no match: no effect.',
  },
  STALL_TERM: {
    status: M,
    note: 'Terminates every stalled transaction of the StreamID, those still waiting to record their event too.',
  },
  SYNC: {
    status: M,
    note: 'Completes once every earlier command has (execution is synchronous); SIG_IRQ pulses the CMD_SYNC wired line and, with MSIs, writes MSIData to a non-zero MSIAddress; SIG_SEV sends a WFE wake-up event on the platform event signal with IDR0.SEV (so does the queue leaving full), and acts as SIG_NONE without it; MSH and MSIAttr have no effect.',
  },
  TLBI_S_EL2_ALL: { status: C, note: SECURE_QUEUE },
  TLBI_S_EL2_ASID: { status: C, note: SECURE_QUEUE },
  TLBI_S_EL2_VA: { status: C, note: SECURE_QUEUE },
  TLBI_S_EL2_VAA: { status: C, note: SECURE_QUEUE },
  TLBI_S_S12_VMALL: { status: C, note: SECURE_QUEUE },
  TLBI_S_S2_IPA: { status: C, note: SECURE_QUEUE },
  TLBI_SNH_ALL: { status: C, note: SECURE_QUEUE },
  DPTI_ALL: { status: C, note: 'Always CERROR_ILL: no Device Permission Table (IDR3.DPT == 0).' },
  DPTI_PA: { status: C, note: 'Always CERROR_ILL: no Device Permission Table (IDR3.DPT == 0).' },
};

// ---------------------------------------------------------------------------------------------------------
// Events (§7.3). `modelled`: the translation pipeline records it (when the Event queue can take it).

export const EVENT_COVERAGE: Readonly<Record<EventName, Coverage>> = {
  F_UUT: {
    status: N,
    note: 'Never recorded: every transaction the model receives is a supported read or write.',
  },
  C_BAD_STREAMID: {
    status: M,
    note: 'StreamID beyond the Stream table (LOG2SIZE, SIDSIZE) or its L1STD (Span 0, reserved, too large). Recorded only when CR2.RECINVSID == 1; SSV and SubstreamID from the transaction.',
  },
  F_STE_FETCH: {
    status: M,
    note: "Bus abort on the L1STD or STE read (nothing cached), with FetchAddr and the transaction's SSV/SubstreamID.",
  },
  C_BAD_STE: {
    status: M,
    note: 'Every `checkSte` ILLEGAL rule, and stage 2 controls the walker cannot use; SSV and SubstreamID from the transaction.',
  },
  F_BAD_ATS_TREQ: {
    status: M,
    note: 'ATS Translation Request while SMMUEN == 0, or to an STE with EATS == 0b00 or Config bypass. One to a Config-abort STE is refused without an event, as the spec says.',
  },
  F_STREAM_DISABLED: {
    status: M,
    note: 'A transaction without a SubstreamID when S1DSS is 0b00 (or reserved 0b11), or one with SubstreamID 0 when S1DSS == 0b10.',
  },
  F_TRANSL_FORBIDDEN: {
    status: N,
    note: 'Never recorded: ATS Translated traffic and CR0.ATSCHK are not modelled.',
  },
  C_BAD_SUBSTREAMID: {
    status: M,
    note: 'SubstreamID without substreams, beyond S1CDMax, or through an invalid or out-of-range L1CD.',
  },
  F_CD_FETCH: {
    status: M,
    note: 'Bus abort on the L1CD or CD read, with FetchAddr (a stage 2 fault on the way is a stage 2 event, CLASS CD).',
  },
  C_BAD_CD: { status: M, note: 'Every `checkCd` ILLEGAL rule, and stage 1 controls the walker cannot use.' },
  F_WALK_EABT: {
    status: M,
    note: 'Bus abort on a descriptor read or write-back: stage 1 (S2 = 0, CLASS TT) or stage 2 (S2 = 1, CLASS CD/TT/IN), with FetchAddr, recorded whatever CD.R / STE.S2R say; Reason (IMPLEMENTATION DEFINED) is 0.',
  },
  F_TRANSLATION: {
    status: M,
    note: 'Invalid descriptor, input outside TxSZ, or EPD0; with CD.R or STE.S2R, IPA for stage 2, CLASS CD/TT/IN. With CD.S / STE.S2S the transaction stalls: always recorded, Stall = 1 and a STAG (this and the next three events).',
  },
  F_ADDR_SIZE: {
    status: M,
    note: 'Table or output address beyond IPS/S2PS, recorded as F_TRANSLATION is; and (stage 1, CLASS IN, S2 = 0, always recorded, never stalled) an input beyond the OAS on a bypass STE or beyond the IAS when stage 1 is bypassed (§3.4).',
  },
  F_ACCESS: { status: M, note: 'Access flag 0 without HA/S2HA; recorded as F_TRANSLATION is.' },
  F_PERMISSION: {
    status: M,
    note: 'Stage 1 or stage 2 permission failure, on a walk or a TLB hit (which keeps each stage’s permissions for both privilege levels); recorded as F_TRANSLATION is. A transaction without a SubstreamID is checked, and recorded (PnU = InD = 0), as Data, Unprivileged (§13.7); an instruction fetch needs execute permission alone, so it succeeds to an execute-only page (§13.7.1), which grants an ATS request nothing. TTRnW with CLASS TT: 0 when a stage-1 descriptor’s hardware update lacked stage-2 write permission, 1 for its read.',
  },
  F_TLB_CONFLICT: {
    status: N,
    note: 'Never recorded: overlapping TLB entries (after a missing invalidation) are resolved by lookup order (the smallest page size first, an ASID’s own entry before a global one).',
  },
  F_CFG_CONFLICT: {
    status: N,
    note: 'Never recorded: STE.CONT is not used, so configurations cannot conflict.',
  },
  E_PAGE_REQUEST: {
    status: N,
    note: 'Never recorded: page requests arrive through PCIe PRI and go to the PRI queue.',
  },
  F_VMS_FETCH: { status: N, note: 'Never recorded: no Virtual Machine Structure (IDR3.MPAM == 0).' },
};

// ---------------------------------------------------------------------------------------------------------
// PRI queue entries (§8), written by `Smmuv3Hardware.pageRequest`.

export const PRI_ENTRY_COVERAGE: Readonly<Record<keyof PriEntry, FieldCoverage>> = {
  streamId: { spec: 'StreamID', status: M, note: 'The requesting endpoint.' },
  substreamId: {
    spec: 'SubstreamID',
    status: M,
    note: 'The request PASID; written as 0 without one (UNKNOWN in the spec).',
  },
  priv: {
    spec: 'Priv',
    status: M,
    note: 'From the request when it has a PASID; 0 without one (Priv travels in the PASID prefix).',
  },
  exec: {
    spec: 'eXecute',
    status: M,
    note: 'From the request when it has a PASID; 0 without one (Exec travels in the PASID prefix).',
  },
  read: { spec: 'Read', status: M, note: 'From the request.' },
  write: { spec: 'Write', status: M, note: 'From the request.' },
  last: {
    spec: 'Last',
    status: M,
    note: 'Ends the group; drives PRIQ_IRQ_CFG2.LO. A request the queue cannot take is answered at once: disabled queue, every request with Response Failure; overflow, Last requests only, with Success (PASID per STE.PPAR, or Response Failure when the STE cannot be checked); Stop markers never.',
  },
  ssv: { spec: 'SSV', status: M, note: 'Set when the request carries a PASID.' },
  prgIndex: { spec: 'PRGIndex', status: M, note: 'Page Request Group Index, echoed by CMD_PRI_RESP.' },
  addressPage: { spec: 'Page address', status: M, note: 'Page address[63:12] of the request.' },
};
