import { describe, expect, it } from 'vitest';
import { resolveApicOptions, X86ApicOptionsSchema } from './options.js';

const issues = (input: unknown) => {
  const r = X86ApicOptionsSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('x86-apic options', () => {
  it('defaults: two CPUs at APIC IDs 0 and 1, xAPIC, no extended destination ID', () => {
    const options = X86ApicOptionsSchema.parse({});
    expect(options).toEqual({ cpus: 2, x2apic: 'auto', extendedDestinationId: false });
    expect(resolveApicOptions(options)).toEqual({
      apicIds: [0, 1],
      x2apic: false,
      extendedDestinationId: false,
    });
  });

  it('auto x2APIC: on when an APIC ID is above 254', () => {
    const resolve = (apicIds: number[], x2apic?: boolean) =>
      resolveApicOptions(X86ApicOptionsSchema.parse({ cpus: apicIds.length, apicIds, x2apic })).x2apic;
    expect(resolve([0, 254])).toBe(false);
    expect(resolve([0, 255])).toBe(true);
    expect(resolve([0, 1], true)).toBe(true);
  });

  it('names the path of each mistake', () => {
    expect(issues({ cpus: 0 })).toEqual(['cpus: expected an integer from 1 to 1024, got 0']);
    expect(issues({ cpus: 1025 })).toHaveLength(1);
    expect(issues({ cpus: 2, apicIds: [0] })).toEqual(['apicIds: expected 2 APIC IDs (one per CPU), got 1']);
    expect(issues({ cpus: 2, apicIds: [3, 3] })).toEqual(["apicIds.1: APIC ID 3 is CPU 0's already"]);
    expect(issues({ cpus: 2, apicIds: [0, 255], x2apic: false })).toEqual([
      'apicIds.1: APIC ID 255 needs x2APIC mode: xAPIC IDs are 8 bits and 0xFF is the broadcast',
    ]);
    expect(issues({ cpus: 1, apicIds: [0xffff_ffff] })).toHaveLength(1);
    expect(issues({ cpus: 1, apicIds: [0xffff_fffe] })).toEqual([]);
    expect(issues({ x2apic: 'yes' })).toHaveLength(1);
    expect(issues({ extra: 1 })).toHaveLength(1);
  });
});
