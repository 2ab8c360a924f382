/**
 * SMMUv3 guest driver actions for scenarios (`guest-op` steps): things a guest's SMMUv3 driver does that
 * the vendor-neutral steps cannot say, used by the VM scenarios.
 * - `share-ste` {from, to}: points `to`'s STE at `from`'s CD table (two STEs, one CD table).
 * - `new-cd-table` {device}: copies the device's CD table to a new guest page and points its STE there
 *   (a new S1ContextPtr with the same contents).
 * - `commands` {commands: ["TLBI_NH_ASID asid=1", "CFGI_CD_ALL streamId=0x99", …], expect?: "ok" | "ill"}:
 *   submits raw commands (fields `name=value`, unset fields 0) with a CMD_SYNC; with `expect: ill` one
 *   of them must come back CERROR_ILL, which the driver skips as Linux does (CMD_SYNC in its place,
 *   GERRORN acknowledged).
 */
import { type GuestOp, type GuestOpContext, IommufdError, toHex } from '@iommukit/core';
import { Smmuv3Driver } from '../driver/smmuv3-driver.js';
import { CMD_OPCODE, type Command, type CommandName, encodeCommand } from '../hw/commands.js';
import { decodeSte, encodeSte, STE_S1FMT } from '../hw/ste.js';

function driverOf(context: GuestOpContext): Smmuv3Driver {
  if (!(context.driver instanceof Smmuv3Driver))
    throw new Error('the guest IOMMU driver is not an SMMUv3 driver');
  return context.driver;
}

function text(args: Readonly<Record<string, unknown>>, key: string): string {
  const value = args[key];
  if (typeof value !== 'string') throw new Error(`argument "${key}" must be a string`);
  return value;
}

/** Bytes of a CD table (or its L1 table) as the STE describes it (§5.2 S1Fmt, S1CDMax). */
function cdTableBytes(s1Fmt: number, s1CdMax: number): number {
  const cds = 2 ** s1CdMax;
  if (s1Fmt === STE_S1FMT.LINEAR) return cds * 64;
  const perLeaf = s1Fmt === STE_S1FMT.TWO_LEVEL_4K ? 64 : 1024;
  return Math.max(1, Math.ceil(cds / perLeaf)) * 8;
}

const shareSte: GuestOp = (context, args) => {
  const driver = driverOf(context);
  const from = context.device(text(args, 'from'));
  const to = context.device(text(args, 'to'));
  const ste = driver.streamTable.readSte(from.streamId);
  driver.streamTable.writeSte(to.streamId, ste);
  return `guest points ${to.name}'s STE (vSID ${toHex(to.streamId)}) at ${from.name}'s CD table ${toHex(decodeSte(ste).s1ContextPtr)}`;
};

const newCdTable: GuestOp = (context, args) => {
  const driver = driverOf(context);
  const device = context.device(text(args, 'device'));
  const ste = decodeSte(driver.streamTable.readSte(device.streamId));
  const bytes = cdTableBytes(ste.s1Fmt, ste.s1CdMax);
  const copy = context.allocBuffer(Math.max(4096, bytes));
  const who = context.bus.counter('guest-op');
  const read = context.bus.readBytes(ste.s1ContextPtr, bytes, who);
  if (!read.ok) throw new Error(`cannot read ${device.name}'s CD table at ${toHex(ste.s1ContextPtr)}`);
  context.bus.writeBytes(copy, read.data, who);
  driver.streamTable.writeSte(device.streamId, encodeSte({ ...ste, s1ContextPtr: Number(copy) }));
  return `guest copies ${device.name}'s CD table ${toHex(ste.s1ContextPtr)} to ${toHex(copy)} and points its STE there`;
};

const NAMES = new Map(Object.keys(CMD_OPCODE).map((name) => [name, name as CommandName]));

/** "CFGI_CD_ALL streamId=0x99" → the encoded command. */
function parseCommand(line: string): Uint32Array {
  const [name, ...fields] = line.trim().split(/\s+/);
  const op = NAMES.get((name ?? '').replace(/^CMD_/, ''));
  if (!op) throw new Error(`unknown SMMUv3 command "${name}"`);
  const command: Record<string, unknown> = { op };
  for (const field of fields) {
    const [key, value] = field.split('=');
    if (!key || value === undefined) throw new Error(`expected name=value, got "${field}"`);
    command[key] = value === 'true' ? true : value === 'false' ? false : Number(value);
  }
  return encodeCommand(command as unknown as Command);
}

const commands: GuestOp = (context, args) => {
  const driver = driverOf(context);
  const list = args.commands;
  if (!Array.isArray(list) || !list.every((c) => typeof c === 'string'))
    throw new Error('argument "commands" must be a list of strings');
  const expect = args.expect ?? 'ok';
  let refused: IommufdError | undefined;
  try {
    driver.cmdq.submit(list.map(parseCommand));
  } catch (error) {
    if (!(error instanceof IommufdError)) throw error;
    refused = error;
  }
  const failures = driver.cmdq.lastFailures;
  if (expect === 'ill') {
    const ill = failures.find((f) => f.error === 'CERROR_ILL');
    if (!ill)
      throw new Error(`expected the SMMU to refuse one of ${list.length} command(s), but it took them all`);
    return `guest submits ${list.length} command(s); the SMMU stops at ${ill.command} with CERROR_ILL (CMDQ_ERR); the guest driver puts a CMD_SYNC in its place, acknowledges GERRORN and the queue goes on`;
  }
  if (refused) throw refused;
  return `guest submits ${list.length} command(s) and a CMD_SYNC; all consumed`;
};

export const smmuv3GuestOps: Readonly<Record<string, GuestOp>> = {
  'share-ste': shareSte,
  'new-cd-table': newCdTable,
  commands,
};
