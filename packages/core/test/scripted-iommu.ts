/**
 * A scriptable IOMMU for endpoint tests: a page map per PASID, logs of the requests it got, ATS and PRI
 * entry points, and optional stalling of faulting transactions.
 */
import type { EndpointDevice } from '../src/device/endpoint.js';
import type { IommuHardware, PageRequest } from '../src/iommu/hardware.js';
import {
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type TranslationRequest,
  type TranslationResult,
} from '../src/iommu/translation.js';

/** A scriptable IOMMU: a page map per PASID, call logs, and ATS/PRI entry points. */
export class ScriptedIommu implements IommuHardware {
  readonly instance = 'iommu0';
  readonly mmio = { base: 0n, size: 0 };
  /** `perm` is what privileged requests get, `userPerm` what unprivileged ones get (PERM_READ/WRITE/EXEC). */
  readonly pages = new Map<string, { pfn: number; perm: number; userPerm: number }>();
  readonly translated: TranslationRequest[] = [];
  readonly atsRequests: TranslationRequest[] = [];
  readonly pageRequests: PageRequest[] = [];
  /** Hold (stall) faulting transactions instead of failing them, with ids from 100. */
  stall = false;
  readonly held = new Map<number, { request: TranslationRequest; failure: TranslationResult }>();
  private nextStallId = 100;

  map(pasid: number, iovaPfn: number, pfn: number, perm = PERM_READ | PERM_WRITE, userPerm = perm) {
    this.pages.set(`${pasid}:${iovaPfn}`, { pfn, perm, userPerm });
  }

  /** What `page` grants a request at its privilege level. */
  private granted(page: { perm: number; userPerm: number }, r: TranslationRequest): number {
    return r.access & PERM_PRIV ? page.perm : page.userPerm;
  }

  private lookup(r: TranslationRequest): TranslationResult {
    const page = this.pages.get(`${r.pasid}:${r.iovaPfn}`);
    const need = r.access & ~PERM_PRIV;
    if (page && (this.granted(page, r) & need) === need)
      return { ok: true, pfn: page.pfn, perm: this.granted(page, r), pageShift: 12 };
    const kind = page ? 'permission' : 'translation';
    return {
      ok: false,
      fault: {
        kind,
        vendorCode: kind.toUpperCase(),
        streamId: r.streamId,
        pasid: r.pasid,
        iova: BigInt(r.iovaPfn) << 12n,
        access: r.access,
        recorded: true,
      },
    };
  }

  translate(r: TranslationRequest): TranslationResult {
    this.translated.push(r);
    const result = this.lookup(r);
    if (result.ok || !this.stall) return result;
    const stallId = this.nextStallId++;
    this.held.set(stallId, { request: r, failure: result });
    return { ...result, stallId };
  }

  /** Software resolved a held transaction: retry it (through the page map) or terminate it. */
  release(port: EndpointDevice, stallId: number, retry: boolean): void {
    const { request, failure } = this.held.get(stallId)!;
    this.held.delete(stallId);
    port.completeStalled(stallId, retry ? this.lookup(request) : failure);
  }

  atsTranslate(r: TranslationRequest): TranslationResult {
    this.atsRequests.push(r);
    const page = this.pages.get(`${r.pasid}:${r.iovaPfn}`);
    // ATS answers with what the mapping grants at the request's privilege level, even if that does not
    // cover the access, and Exe only when it was requested (IHI 0070 §13.7); nothing granted is a failure.
    const perm = page ? this.granted(page, r) & (r.access & PERM_EXEC ? ~0 : ~PERM_EXEC) : 0;
    if (page && perm !== 0) return { ok: true, pfn: page.pfn, perm, pageShift: 12 };
    return this.lookup(r);
  }

  pageRequest(_streamId: number, request: PageRequest): void {
    this.pageRequests.push(request);
  }

  connectEndpoint(): void {}
  disconnectEndpoint(): void {}
  identify() {
    return {};
  }
  stats() {
    return {};
  }
}
