import { errnoOf, IommufdError } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePageRequest,
  encodePageRequest,
  PAGE_REQUEST_TYPE,
  PAGE_REQUEST_WORDS,
  PAGE_RESPONSE,
  type PageRequest,
} from './page-requests.js';

const encoded = (pr: Partial<PageRequest>) => {
  const out = new Uint32Array(PAGE_REQUEST_WORDS);
  encodePageRequest(pr, out, 0);
  return out;
};

/** Every field set, with its words written from Linux's `struct page_req_dsc` and `decode_prq_descriptor`. */
const REQUEST: PageRequest = {
  type: 1,
  pasidPresent: true,
  privateDataPresent: true,
  rid: 0x0308,
  pasid: 0xa_bcde,
  exe: true,
  priv: true,
  read: true,
  write: true,
  lpig: true,
  prgIndex: 0x155,
  addr: 0x7fff_ffff_f000,
  privateData: [0x1111_1111, 0x2222_2222, 0x3333_3333, 0xffff_ffff],
};
const WORDS = Uint32Array.of(
  0x0308_0301, // type 7:0, PASID present 8, private data present 9, RID 31:16
  0x003a_bcde, // PASID 51:32, exe 52, priv 53
  0xffff_faaf, // read 64, write 65, LPIG 66, PRG index 75:67, address bits 31:12
  0x0000_7fff, // address bits 63:32
  0x1111_1111,
  0x2222_2222,
  0x3333_3333,
  0xffff_ffff,
);

describe('page request descriptor', () => {
  it('matches the spec vector both ways', () => {
    expect(encoded(REQUEST)).toEqual(WORDS);
    expect(decodePageRequest(WORDS, 0)).toEqual(REQUEST);
  });

  it('reads each flag from its own bit', () => {
    const flags = [
      ['pasidPresent', 0, 8],
      ['privateDataPresent', 0, 9],
      ['exe', 1, 20],
      ['priv', 1, 21],
      ['read', 2, 0],
      ['write', 2, 1],
      ['lpig', 2, 2],
    ] as const;
    for (const [key, word, bit] of flags) {
      const w = new Uint32Array(PAGE_REQUEST_WORDS);
      w[word] = 2 ** bit;
      const pr = decodePageRequest(w, 0);
      for (const [other] of flags) expect(pr[other], `${key} → ${other}`).toBe(other === key);
    }
  });

  it('defaults the type to a page request', () => {
    expect(PAGE_REQUEST_TYPE).toBe(1);
    expect(encoded({ rid: 0x10 })).toEqual(Uint32Array.of(0x0010_0001, 0, 0, 0, 0, 0, 0, 0));
  });

  it('reads and writes one slot of a ring', () => {
    const ring = new Uint32Array(24).fill(0x5555_5555);
    encodePageRequest(REQUEST, ring, 16);
    expect([...ring.subarray(16)]).toEqual([...WORDS]);
    expect([...ring.subarray(0, 16)]).toEqual(new Array(16).fill(0x5555_5555));
    expect(decodePageRequest(ring, 16)).toEqual(REQUEST);
  });

  it('refuses values its fields cannot hold', () => {
    expect(errnoOf(() => encoded({ rid: 0x1_0000 }))).toBe('EINVAL');
    expect(errnoOf(() => encoded({ prgIndex: 0x200 }))).toBe('EINVAL');
    expect(errnoOf(() => encoded({ addr: 0x1234 }))).toBe('EINVAL');
    expect(errnoOf(() => encoded({ privateData: [1, 2, 3] }))).toBe('EINVAL');
    expect(errnoOf(() => encoded({ privateData: [1, 2, 3, -1] }))).toBe('EINVAL');
  });

  it('names the structure and field it refuses', () => {
    const refused = (pr: Partial<PageRequest>) => {
      try {
        encoded(pr);
      } catch (error) {
        if (error instanceof IommufdError) return error.context;
        throw error;
      }
      return undefined;
    };
    expect(refused({ rid: 0x1_0000 })).toEqual({ structure: 'page_req_dsc', field: 'rid' });
    expect(refused({ addr: 0x1234 })).toEqual({ structure: 'page_req_dsc', field: 'addr' });
    expect(refused({ privateData: [1, 2, 3] })).toEqual({ structure: 'page_req_dsc', field: 'privateData' });
    expect(refused({ privateData: [1, 2, 3, -1] })).toEqual({
      structure: 'page_req_dsc',
      field: 'privateData[3]',
    });
  });

  it('needs a 32-byte aligned slot that fits', () => {
    expect(() => decodePageRequest(new Uint32Array(16), -8)).toThrow(RangeError);
    expect(() => encodePageRequest({}, new Uint32Array(16), -8)).toThrow(RangeError);
    expect(() => decodePageRequest(new Uint32Array(16), 4)).toThrow(RangeError);
    expect(() => decodePageRequest(new Uint32Array(12), 8)).toThrow(RangeError);
    expect(() => encodePageRequest({}, new Uint32Array(8), 1)).toThrow(RangeError);
  });

  it('round-trips any descriptor', () => {
    const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
    const request = fc.record({
      type: u(8),
      pasidPresent: fc.boolean(),
      privateDataPresent: fc.boolean(),
      rid: u(16),
      pasid: u(20),
      exe: fc.boolean(),
      priv: fc.boolean(),
      read: fc.boolean(),
      write: fc.boolean(),
      lpig: fc.boolean(),
      prgIndex: u(9),
      addr: u(52).map((page) => page * 4096),
      privateData: fc.array(u(32), { minLength: 4, maxLength: 4 }),
    });
    fc.assert(
      fc.property(request, (pr) => {
        expect(decodePageRequest(encoded(pr), 0)).toEqual(pr);
      }),
    );
  });

  it('names the page group response codes as Linux does (QI_RESP_*)', () => {
    expect(PAGE_RESPONSE).toEqual({ SUCCESS: 0x0, INVALID: 0x1, FAILURE: 0xf });
  });
});
