/**
 * ITS commands (GICv3 spec §5.3): 32 bytes, four little-endian doublewords. Opcode DW0[7:0], DeviceID
 * DW0[63:32], EventID DW1[31:0], pINTID DW1[63:32], MAPD Size DW1[4:0] (EventID bits − 1), ITT_addr
 * DW2[51:8], RDbase DW2[51:16] (a processor number, GITS_TYPER.PTA = 0), ICID DW2[15:0], V DW2[63];
 * MOVALL's second RDbase in DW3[51:16]. Checked against Linux irq-gic-v3-its.c its_encode_*.
 */

export const ITS_COMMAND_BYTES = 32;

export const ITS_OPCODES = {
  MOVI: 0x01,
  INT: 0x03,
  CLEAR: 0x04,
  SYNC: 0x05,
  MAPD: 0x08,
  MAPC: 0x09,
  MAPTI: 0x0a,
  MAPI: 0x0b,
  INV: 0x0c,
  INVALL: 0x0d,
  MOVALL: 0x0e,
  DISCARD: 0x0f,
} as const;

export type ItsCommandName = keyof typeof ITS_OPCODES;

type EventCommand = { readonly deviceId: number; readonly eventId: number };

export type ItsCommand =
  | ({ readonly op: 'MAPD' } & {
      readonly deviceId: number;
      /** EventID bits − 1 (the ITT covers 2^(size+1) events). */
      readonly size: number;
      readonly ittAddress: bigint;
      readonly valid: boolean;
    })
  | { readonly op: 'MAPC'; readonly icid: number; readonly rdbase: number; readonly valid: boolean }
  | ({ readonly op: 'MAPTI'; readonly intid: number; readonly icid: number } & EventCommand)
  | ({ readonly op: 'MAPI'; readonly icid: number } & EventCommand)
  | ({ readonly op: 'MOVI'; readonly icid: number } & EventCommand)
  | ({ readonly op: 'DISCARD' | 'INV' | 'INT' | 'CLEAR' } & EventCommand)
  | { readonly op: 'INVALL'; readonly icid: number }
  | { readonly op: 'SYNC'; readonly rdbase: number }
  | { readonly op: 'MOVALL'; readonly rdbase1: number; readonly rdbase2: number }
  | { readonly op: 'UNKNOWN'; readonly opcode: number };

export type ItsCommandWords = readonly [bigint, bigint, bigint, bigint];

const U32 = 0xffff_ffffn;
const RDBASE_SHIFT = 16n;
const RDBASE_MASK = (1n << 36n) - 1n; // bits [51:16]
const ITT_MASK = ((1n << 52n) - 1n) & ~0xffn; // bits [51:8]
const VALID = 1n << 63n;

export function encodeCommand(c: ItsCommand): ItsCommandWords {
  if (c.op === 'UNKNOWN') return [BigInt(c.opcode & 0xff), 0n, 0n, 0n];
  const op = BigInt(ITS_OPCODES[c.op]);
  const dev = 'deviceId' in c ? BigInt(c.deviceId >>> 0) << 32n : 0n;
  const event = 'eventId' in c ? BigInt(c.eventId >>> 0) : 0n;
  switch (c.op) {
    case 'MAPD':
      return [op | dev, BigInt(c.size & 0x1f), (c.ittAddress & ITT_MASK) | (c.valid ? VALID : 0n), 0n];
    case 'MAPC':
      return [
        op,
        0n,
        BigInt(c.icid & 0xffff) | ((BigInt(c.rdbase) & RDBASE_MASK) << RDBASE_SHIFT) | (c.valid ? VALID : 0n),
        0n,
      ];
    case 'MAPTI':
      return [op | dev, event | (BigInt(c.intid >>> 0) << 32n), BigInt(c.icid & 0xffff), 0n];
    case 'MAPI':
    case 'MOVI':
      return [op | dev, event, BigInt(c.icid & 0xffff), 0n];
    case 'DISCARD':
    case 'INV':
    case 'INT':
    case 'CLEAR':
      return [op | dev, event, 0n, 0n];
    case 'INVALL':
      return [op, 0n, BigInt(c.icid & 0xffff), 0n];
    case 'SYNC':
      return [op, 0n, (BigInt(c.rdbase) & RDBASE_MASK) << RDBASE_SHIFT, 0n];
    case 'MOVALL':
      return [
        op,
        0n,
        (BigInt(c.rdbase1) & RDBASE_MASK) << RDBASE_SHIFT,
        (BigInt(c.rdbase2) & RDBASE_MASK) << RDBASE_SHIFT,
      ];
  }
}

export function decodeCommand(w: ItsCommandWords): ItsCommand {
  const opcode = Number(w[0] & 0xffn);
  const deviceId = Number(w[0] >> 32n);
  const eventId = Number(w[1] & U32);
  const icid = Number(w[2] & 0xffffn);
  const rdbase = (v: bigint) => Number((v >> RDBASE_SHIFT) & RDBASE_MASK);
  const valid = (w[2] & VALID) !== 0n;
  switch (opcode) {
    case ITS_OPCODES.MAPD:
      return { op: 'MAPD', deviceId, size: Number(w[1] & 0x1fn), ittAddress: w[2] & ITT_MASK, valid };
    case ITS_OPCODES.MAPC:
      return { op: 'MAPC', icid, rdbase: rdbase(w[2]), valid };
    case ITS_OPCODES.MAPTI:
      return { op: 'MAPTI', deviceId, eventId, intid: Number(w[1] >> 32n), icid };
    case ITS_OPCODES.MAPI:
      return { op: 'MAPI', deviceId, eventId, icid };
    case ITS_OPCODES.MOVI:
      return { op: 'MOVI', deviceId, eventId, icid };
    case ITS_OPCODES.DISCARD:
      return { op: 'DISCARD', deviceId, eventId };
    case ITS_OPCODES.INV:
      return { op: 'INV', deviceId, eventId };
    case ITS_OPCODES.INT:
      return { op: 'INT', deviceId, eventId };
    case ITS_OPCODES.CLEAR:
      return { op: 'CLEAR', deviceId, eventId };
    case ITS_OPCODES.INVALL:
      return { op: 'INVALL', icid };
    case ITS_OPCODES.SYNC:
      return { op: 'SYNC', rdbase: rdbase(w[2]) };
    case ITS_OPCODES.MOVALL:
      return { op: 'MOVALL', rdbase1: rdbase(w[2]), rdbase2: rdbase(w[3]) };
    default:
      return { op: 'UNKNOWN', opcode };
  }
}

/**
 * Command errors. An ITS may either ignore a failing command and go on or stall the queue (GICv3 spec
 * §5.3); this model ignores it, records the error and goes on, as QEMU's and KVM's ITS do. Only a command
 * the ITS cannot read from memory stalls the queue (CREADR.Stalled). The architected E_ITS_* codes known
 * from Linux arm-gic-v3.h are given with their values; other failures carry a name in the same style
 * and no code.
 */
export const ITS_ERROR_CODES: Readonly<Record<string, number>> = {
  MOVI_UNMAPPED_INTERRUPT: 0x01_0107,
  MOVI_UNMAPPED_COLLECTION: 0x01_0109,
  INT_UNMAPPED_INTERRUPT: 0x01_0307,
  CLEAR_UNMAPPED_INTERRUPT: 0x01_0507,
  MAPD_DEVICE_OOR: 0x01_0801,
  MAPD_ITTSIZE_OOR: 0x01_0802,
  MAPC_PROCNUM_OOR: 0x01_0902,
  MAPC_COLLECTION_OOR: 0x01_0903,
  MAPTI_UNMAPPED_DEVICE: 0x01_0a04,
  MAPTI_ID_OOR: 0x01_0a05,
  MAPTI_PHYSICALID_OOR: 0x01_0a06,
  INV_UNMAPPED_INTERRUPT: 0x01_0c07,
  INVALL_UNMAPPED_COLLECTION: 0x01_0d09,
  MOVALL_PROCNUM_OOR: 0x01_0e01,
  DISCARD_UNMAPPED_INTERRUPT: 0x01_0f07,
};

/** A command the ITS dropped. */
export interface ItsCommandError {
  /** Queue offset of the command. */
  readonly offset: number;
  readonly command: ItsCommand;
  /** `MAPTI_UNMAPPED_DEVICE`-style name (E_ITS_ without the prefix). */
  readonly error: string;
  /** The architected code, when there is one. */
  readonly code: number | undefined;
}
