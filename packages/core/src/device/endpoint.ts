/**
 * A PCI-like endpoint that does DMA (docs/design.md §4). It has a requester ID and the stream ID its IOMMU
 * sees, and optionally the PASID, ATS and PRI capabilities. Every DMA is split at 4 KiB page boundaries;
 * each page is translated by the IOMMU (or by the endpoint's ATC when ATS is enabled) and then accessed on
 * the bus. Without an IOMMU, addresses go to the bus unchanged.
 */

import { toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { DevicePciControl, IommuDeviceRef } from '../iommu/driver.js';
import type { EndpointPort, IommuHardware, PageResponse } from '../iommu/hardware.js';
import {
  type IommuFault,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type TranslationResult,
} from '../iommu/translation.js';
import type { AccessCounter } from '../memory/access-counter.js';
import type { AccessSize, BusAbort, MemoryBus } from '../memory/memory-bus.js';
import {
  type InterruptDelivery,
  type InterruptRemappingHardware,
  inInterruptWindow,
} from '../msi/interrupt-remapping.js';
import type { ITracer } from '../trace/tracer.js';
import { AddressTranslationCache, atcGrants } from './atc.js';
import { MsixTable } from './msix-table.js';
import { PageRequestInterface } from './page-request-interface.js';
import { formatRid } from './rid.js';

export interface EndpointSpec {
  readonly name: string;
  readonly rid: number;
  readonly streamId: number;
  /** PASID capability width (0 or absent: no PASID capability). */
  readonly pasidBits?: number;
  /** ATS capability with an ATC of this many entries. */
  readonly atcEntries?: number;
  /** PRI capability with this outstanding page request allocation. */
  readonly priOutstanding?: number;
  /** The device tolerates stalled transactions (firmware `dma-can-stall`). */
  readonly canStall?: boolean;
  /** MSI-X table size (absent: no MSI-X capability). */
  readonly msiVectors?: number;
}

export interface DmaOptions {
  readonly pasid?: number;
  /** Privileged Mode Requested: needs `pasid`, PCIe carries it only in the PASID TLP prefix. */
  readonly privileged?: boolean;
  /** Execute Requested (an instruction fetch): needs `pasid`, like `privileged`; reads only. */
  readonly exec?: boolean;
  /** On an ATS translation failure, send a PRI page request instead of giving up (needs PRI enabled). */
  readonly requestPages?: boolean;
  /**
   * List the HPA of each page in the result. Off by default: a DMA then builds nothing per page (an HPA
   * is a BigInt, exact above 2^53).
   */
  readonly hpas?: boolean;
}

/** The largest IOVA a `number` holds exactly. */
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** The options of a DMA given none (one object, not one per call). */
const NO_OPTIONS: DmaOptions = Object.freeze({});

/** The `hpas` of a DMA that was not asked for them. */
const NO_HPAS: readonly bigint[] = Object.freeze([]);

interface DmaProgress {
  readonly iova: bigint;
  readonly bytesDone: number;
}

export type DmaFailure =
  | (DmaProgress & { readonly ok: false; readonly reason: 'fault'; readonly fault: IommuFault })
  | (DmaProgress & {
      readonly ok: false;
      readonly reason: 'stalled';
      readonly fault: IommuFault;
      /** The IOMMU holds the page's transaction; the DMA goes on when it is resumed. */
      readonly stallId: number;
    })
  | (DmaProgress & { readonly ok: false; readonly reason: 'abort'; readonly abort: BusAbort })
  | (DmaProgress & { readonly ok: false; readonly reason: 'page-request'; readonly groupIndex: number })
  | (DmaProgress & { readonly ok: false; readonly reason: 'pri-exhausted' });

export type DmaWriteResult =
  /** `hpas`: each page's HPA when the DMA asked for them (`DmaOptions.hpas`), else empty. */
  { readonly ok: true; readonly bytes: number; readonly hpas: readonly bigint[] } | DmaFailure;
export type DmaReadResult =
  | { readonly ok: true; readonly data: Uint8Array; readonly hpas: readonly bigint[] }
  | DmaFailure;

/** How a DMA that stalled ended, once the IOMMU let its held transaction go. */
export interface StalledDmaOutcome {
  readonly stallId: number;
  readonly op: 'read' | 'write';
  /** Start of the whole DMA. */
  readonly iova: bigint;
  /** Set when the DMA completed: every byte was transferred (a read's data is in `data`). */
  readonly ok: boolean;
  readonly data?: Uint8Array;
  /** Why it did not complete (the terminated transaction's fault, a later fault or bus abort). */
  readonly failure?: DmaFailure;
}

/** What a DMA moves: the bytes to write, or the buffer a read fills. */
interface DmaPayload {
  readonly op: 'read' | 'write';
  readonly data: Uint8Array;
}

/** A DMA waiting for a held transaction: the rest of it runs once that page's translation is known. */
interface StalledDma extends DmaPayload {
  readonly iova: bigint;
  resume(result: TranslationResult): DmaFailure | undefined;
}

const PAGE = 4096;

export class EndpointDevice implements IommuDeviceRef, EndpointPort {
  readonly name: string;
  readonly rid: number;
  readonly streamId: number;
  readonly pasidBits: number;
  readonly canStall: boolean;
  readonly atc: AddressTranslationCache | undefined;
  readonly pri: PageRequestInterface | undefined;
  readonly pci: DevicePciControl;
  /** The MSI-X table (size 0 without the capability). */
  readonly msix: MsixTable;
  /** DMAs that stalled, by the IOMMU's stall id, and how the finished ones ended (oldest first). */
  private readonly stalled = new Map<number, StalledDma>();
  readonly stallOutcomes: StalledDmaOutcome[] = [];
  private atsOn = false;
  private pasidEnabled = false;
  private readonly counter: AccessCounter;

  constructor(
    spec: EndpointSpec,
    private readonly bus: MemoryBus,
    private readonly iommu: IommuHardware | undefined,
    private readonly tracer: ITracer,
    /** The platform's interrupt controller, which takes the interrupts the IOMMU's remapping unit produces. */
    private readonly interrupts?: InterruptDelivery,
  ) {
    this.name = spec.name;
    this.rid = spec.rid;
    this.streamId = spec.streamId;
    this.pasidBits = spec.pasidBits ?? 0;
    this.canStall = spec.canStall ?? false;
    this.atc = spec.atcEntries ? new AddressTranslationCache(spec.atcEntries) : undefined;
    this.pri = spec.priOutstanding ? new PageRequestInterface(spec.priOutstanding) : undefined;
    this.msix = new MsixTable(spec.msiVectors ?? 0);
    this.counter = bus.counter(`device:${spec.name}`);
    const self = this;
    this.pci = {
      hasAts: this.atc !== undefined,
      hasPri: this.pri !== undefined,
      hasPasid: this.pasidBits > 0,
      setAtsEnabled(enabled) {
        if (enabled && !this.hasAts) throw new IommufdError('ENODEV', `${self.name} has no ATS capability`);
        self.atsOn = enabled;
        if (!enabled) self.atc?.clear();
      },
      setPriEnabled(enabled) {
        if (enabled && !this.hasPri) throw new IommufdError('ENODEV', `${self.name} has no PRI capability`);
        if (self.pri) self.pri.enabled = enabled;
      },
      setPasidEnabled(enabled) {
        if (enabled && !this.hasPasid)
          throw new IommufdError('ENODEV', `${self.name} has no PASID capability`);
        self.pasidEnabled = enabled;
      },
    };
    iommu?.connectEndpoint(this.streamId, this);
  }

  /** ATS is enabled in the device's capability (by its IOMMU's driver): it translates through its ATC. */
  get atsEnabled(): boolean {
    return this.atsOn;
  }

  get ridText(): string {
    return formatRid(this.rid);
  }

  get behindIommu(): string | undefined {
    return this.iommu?.instance;
  }

  /** Writes `data` at `iova` (translated page by page). Stops at the first page that fails. */
  dmaWrite(iova: bigint, data: Uint8Array, options: DmaOptions = NO_OPTIONS): DmaWriteResult {
    const hpas = options.hpas ? [] : undefined;
    const failure = this.forEachPage(iova, { op: 'write', data }, options, hpas);
    if (failure) return failure;
    return { ok: true, bytes: data.length, hpas: hpas ?? NO_HPAS };
  }

  /** DMAs waiting for a stalled transaction. */
  get stalledDmaCount(): number {
    return this.stalled.size;
  }

  /** Reads `length` bytes at `iova` (translated page by page). */
  dmaRead(iova: bigint, length: number, options: DmaOptions = NO_OPTIONS): DmaReadResult {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new IommufdError('EINVAL', `${this.name} cannot read ${length} bytes`, { device: this.name });
    const data = new Uint8Array(length);
    const hpas = options.hpas ? [] : undefined;
    const failure = this.forEachPage(iova, { op: 'read', data }, options, hpas);
    if (failure) return failure;
    return { ok: true, data, hpas: hpas ?? NO_HPAS };
  }

  /**
   * A message-signalled interrupt: a 32-bit write of `data` to `address`, translated like any DMA write —
   * unless the IOMMU has an interrupt remapping unit and the address is in the x86 interrupt window: then
   * it is an interrupt request, which that unit remaps, passes on or blocks.
   */
  msiWrite(address: bigint, data: number): DmaWriteResult {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, data >>> 0, true);
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace(
        'device',
        this.name,
        'msi.write',
        `MSI write data=${toHex(data)} to ${toHex(address)}`,
        {
          address,
          data,
        },
      );
    }
    const remapping = this.iommu?.interruptRemapping;
    if (remapping !== undefined && inInterruptWindow(address))
      return this.interruptRequest(remapping, address, data);
    return this.dmaWrite(address, bytes, { hpas: true });
  }

  /** An interrupt request through the remapping unit (VT-d §5.1, AMD §2.2.5): no page is translated. */
  private interruptRequest(
    remapping: InterruptRemappingHardware,
    address: bigint,
    data: number,
  ): DmaWriteResult {
    const outcome = remapping.request(this.streamId, address, data);
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace('device', this.name, `msi.${outcome.kind}`, `interrupt request ${outcome.kind}`, {
        address,
        data,
        ...(outcome.kind === 'remapped' || outcome.kind === 'posted' ? { index: outcome.index } : {}),
      });
    }
    const requester = { name: this.name, deviceId: this.streamId };
    switch (outcome.kind) {
      case 'blocked':
        return { ok: false, reason: 'fault', fault: outcome.fault, iova: address, bytesDone: 0 };
      case 'passthrough': {
        const w = this.bus.write(address, 4, data >>> 0, this.counter, this.streamId);
        if (!w.ok) return { ok: false, reason: 'abort', abort: w.abort, iova: address, bytesDone: 0 };
        break;
      }
      case 'remapped':
        this.interrupts?.deliverRemapped(outcome.interrupt, requester);
        break;
      case 'posted':
        if (outcome.posted.notify) this.interrupts?.deliverRemapped(outcome.posted.notify, requester);
        break;
    }
    return { ok: true, bytes: 4, hpas: NO_HPAS };
  }

  /**
   * Sends MSI-X vector `vector`: the write its table entry holds, translated like any DMA write. Returns
   * undefined when the vector is unprogrammed or masked (nothing is sent).
   */
  signalMsi(vector: number): DmaWriteResult | undefined {
    const message = this.msix.message(vector);
    return message === undefined ? undefined : this.msiWrite(message.address, message.data);
  }

  // EndpointPort: what the IOMMU sends back.

  invalidateAtc(pasid: number | undefined, iova: bigint, size: bigint): void {
    const dropped = this.atc?.invalidate(pasid, iova, size) ?? 0;
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace(
        'device',
        this.name,
        'atc.invalidate',
        `ATC invalidate ${toHex(iova)}+${toHex(size)}: ${dropped} dropped`,
        {
          pasid: pasid ?? null,
          iova,
          size,
          dropped,
        },
      );
    }
  }

  pageResponse(response: PageResponse): void {
    const known = this.pri?.complete(response) ?? false;
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace(
        'device',
        this.name,
        'pri.response',
        `PRI response group ${response.groupIndex}: ${response.code}`,
        {
          pasid: response.pasid,
          groupIndex: response.groupIndex,
          code: response.code,
          known,
        },
      );
    }
  }

  // EndpointPort: a held transaction ended; the DMA it belongs to goes on from that page.
  completeStalled(stallId: number, result: TranslationResult): void {
    const dma = this.stalled.get(stallId);
    if (!dma) return;
    this.stalled.delete(stallId);
    const failure = dma.resume(result);
    // It went on and stalled again on a later page: that stall's end is the DMA's.
    if (failure?.reason === 'stalled') return;
    const outcome: StalledDmaOutcome = {
      stallId,
      op: dma.op,
      iova: dma.iova,
      ok: failure === undefined,
      ...(failure ? { failure } : dma.op === 'read' ? { data: dma.data } : {}),
    };
    this.stallOutcomes.push(outcome);
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace(
        'device',
        this.name,
        'dma.stall.end',
        `stalled DMA ${dma.op} at ${toHex(dma.iova)} ${failure ? `failed (${failure.reason})` : 'completed'}`,
        { stallId, ok: outcome.ok },
      );
    }
  }

  /**
   * Moves a DMA's bytes page by page, each page translated first. Addresses are numbers (page-frame numbers
   * and offsets); a BigInt is built per page only for the HPAs the result lists, and for a failure's IOVA.
   */
  private forEachPage(
    iova: bigint,
    payload: DmaPayload,
    options: DmaOptions,
    hpas: bigint[] | undefined,
    resumed?: { readonly done: number; readonly pfn: number },
  ): DmaFailure | undefined {
    const pasid = this.checkPasid(options.pasid);
    if (pasid === NO_PASID && (options.privileged || options.exec)) {
      // Priv and Exe exist only in the PASID TLP prefix; without one a request is Data, Unprivileged
      // (PCIe, as IHI 0070 §13.7 reads it): the device cannot send what the caller asks for.
      throw new IommufdError(
        'EINVAL',
        `${this.name} cannot mark a DMA ${options.privileged ? 'privileged' : 'execute'} without a PASID`,
        { device: this.name },
      );
    }
    const perm = payload.op === 'write' ? PERM_WRITE : PERM_READ;
    // PCIe marks Execute Requested on memory reads only: a write is Data (IHI 0070 §13.7).
    const exec = options.exec && payload.op === 'read' ? PERM_EXEC : 0;
    const accessBits = perm | (options.privileged ? PERM_PRIV : 0) | exec;
    const length = payload.data.length;
    // One conversion for an IOVA below 2^53 (every DMA a test or guest makes); BigInt shifts above.
    const small = iova <= MAX_EXACT;
    const firstPfn = small ? Math.floor(Number(iova) / PAGE) : Number(iova >> 12n);
    const firstOffset = small ? Number(iova) % PAGE : Number(iova & 0xfffn);
    let done = resumed?.done ?? 0;
    let resumedPfn = resumed?.pfn;
    while (done < length) {
      const byte = firstOffset + done;
      const pfn = firstPfn + Math.floor(byte / PAGE);
      const offset = byte % PAGE;
      const chunk = Math.min(PAGE - offset, length - done);
      let target = pfn * PAGE + offset;
      if (this.iommu) {
        const result =
          resumedPfn !== undefined
            ? { ok: true as const, pfn: resumedPfn }
            : this.translatePage(pfn, offset, pasid, accessBits, options);
        resumedPfn = undefined;
        if (!result.ok) {
          const at = iova + BigInt(done);
          const { fault, stallId } = result;
          if (fault && stallId !== undefined) {
            const from = done;
            this.stalled.set(stallId, {
              ...payload,
              iova,
              resume: (r) =>
                r.ok
                  ? this.forEachPage(iova, payload, options, hpas, { done: from, pfn: r.pfn })
                  : { ok: false, reason: 'fault', fault: r.fault, iova: at, bytesDone: from },
            });
            return { ok: false, reason: 'stalled', fault, stallId, iova: at, bytesDone: done };
          }
          if (fault) return { ok: false, reason: 'fault', fault, iova: at, bytesDone: done };
          return this.requestPage(at, pasid, accessBits, done);
        }
        target = result.pfn * PAGE + offset;
      }
      const abort = this.accessPage(payload, target, done, chunk);
      this.traceAccess(perm, iova, done, target, chunk, abort);
      if (abort) return { ok: false, reason: 'abort', abort, iova: iova + BigInt(done), bytesDone: done };
      hpas?.push(this.hpaOf(iova, done, target));
      done += chunk;
    }
    return undefined;
  }

  /** The HPA of a DMA's byte `done` that reached the bus at `target`: without an IOMMU the IOVA itself, exact above 2^53. */
  private hpaOf(iova: bigint, done: number, target: number): bigint {
    return this.iommu ? BigInt(target) : iova + BigInt(done);
  }

  /** One page's part of a DMA at HPA `addr`: naturally aligned 1–8 bytes as one bus access, else a copy. */
  private accessPage(payload: DmaPayload, addr: number, done: number, length: number): BusAbort | undefined {
    const data = payload.data;
    if (isWordAccess(addr, length)) {
      if (payload.op === 'write') {
        const value = bytesToBigInt(data, done, length);
        const w = this.bus.write(addr, length as AccessSize, value, this.counter, this.streamId);
        return w.ok ? undefined : w.abort;
      }
      const r = this.bus.read(addr, length as AccessSize, this.counter);
      if (!r.ok) return r.abort;
      for (let i = 0; i < length; i++) data[done + i] = Number((r.value >> BigInt(8 * i)) & 0xffn);
      return undefined;
    }
    if (payload.op === 'write') {
      const chunk = done === 0 && length === data.length ? data : data.subarray(done, done + length);
      const w = this.bus.writeBytes(addr, chunk, this.counter);
      return w.ok ? undefined : w.abort;
    }
    const r = this.bus.readBytes(addr, length, this.counter);
    if (!r.ok) return r.abort;
    data.set(r.data, done);
    return undefined;
  }

  /** Translates one page: ATC first when ATS is on, then the IOMMU. `fault` undefined asks for PRI. */
  private translatePage(
    iovaPfn: number,
    offset: number,
    pasid: number,
    access: number,
    options: DmaOptions,
  ): { ok: true; pfn: number } | { ok: false; fault: IommuFault | undefined; stallId?: number } {
    const iommu = this.iommu!;
    const request = { streamId: this.streamId, pasid, iovaPfn, offset, access };
    if (this.atsOn && this.atc && iommu.atsTranslate) {
      const cached = this.atc.lookup(pasid, request.iovaPfn, access);
      if (cached) return { ok: true, pfn: cached.pfn };
      // A Translation Request with the access's Priv, Exe and NW; the completion's permissions are those of
      // that privilege level.
      const result: TranslationResult = iommu.atsTranslate(request);
      if (result.ok) {
        this.atc.insert({
          pasid,
          iovaPfn: request.iovaPfn,
          privileged: (access & PERM_PRIV) !== 0,
          pfn: result.pfn,
          perm: result.perm,
          pageShift: result.pageShift,
        });
        if (atcGrants(result.perm, access)) return { ok: true, pfn: result.pfn };
      }
      const wantsPri = options.requestPages === true && this.pri?.enabled === true;
      if (wantsPri) return { ok: false, fault: undefined };
      if (!result.ok) return { ok: false, fault: result.fault };
    }
    // The IOMMU's answer as it is: rewrapping it would build an object per page.
    return iommu.translate(request);
  }

  private requestPage(at: bigint, pasid: number, access: number, done: number): DmaFailure {
    const group = this.pri!.openGroup(1);
    if (group === undefined) return { ok: false, reason: 'pri-exhausted', iova: at, bytesDone: done };
    const page = at & ~0xfffn;
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace(
        'device',
        this.name,
        'pri.request',
        `PRI page request ${toHex(page)} group ${group}`,
        {
          pasid,
          iova: page,
          groupIndex: group,
        },
      );
    }
    this.iommu!.pageRequest?.(this.streamId, { pasid, iova: page, access, groupIndex: group, last: true });
    return { ok: false, reason: 'page-request', groupIndex: group, iova: at, bytesDone: done };
  }

  private checkPasid(pasid: number | undefined): number {
    if (pasid === undefined || pasid === NO_PASID) return NO_PASID;
    if (!this.pasidEnabled) {
      throw new IommufdError(
        'EINVAL',
        `${this.name} cannot tag DMA with PASID ${pasid}: PASID capability not enabled`,
        {
          device: this.name,
          pasid,
        },
      );
    }
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= 2 ** this.pasidBits) {
      throw new IommufdError(
        'EINVAL',
        `PASID ${pasid} does not fit ${this.name}'s ${this.pasidBits}-bit PASID capability`,
        {
          device: this.name,
          pasid,
        },
      );
    }
    return pasid;
  }

  /** Traces the access `done` bytes into the DMA at `dmaIova`, which reached the bus at `target`. */
  private traceAccess(
    perm: number,
    dmaIova: bigint,
    done: number,
    target: number,
    length: number,
    abort: BusAbort | undefined,
  ): void {
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (!this.tracer.enabled) return;
    const iova = dmaIova + BigInt(done);
    const hpa = this.hpaOf(dmaIova, done, target);
    const op = perm === PERM_WRITE ? 'write' : 'read';
    const where = this.iommu ? `${toHex(iova)} → ${toHex(hpa)}` : toHex(hpa);
    const outcome = abort ? ` aborted (${abort.reason})` : '';
    this.tracer.trace('device', this.name, `dma.${op}`, `DMA ${op} ${length} bytes at ${where}${outcome}`, {
      iova,
      hpa,
      length,
      ok: abort === undefined,
    });
  }
}

function isWordAccess(addr: number, length: number): boolean {
  return (length === 1 || length === 2 || length === 4 || length === 8) && addr % length === 0;
}

/** `length` bytes of `bytes` from `from`, little-endian. */
function bytesToBigInt(bytes: Uint8Array, from: number, length: number): bigint {
  let v = 0n;
  for (let i = from + length - 1; i >= from; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
