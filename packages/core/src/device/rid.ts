/**
 * PCI requester IDs (PCIe Base Spec §2.2.6.2): bus in bits 15:8, device in 7:3, function in 2:0.
 * Written as `bb:dd.f` in hex, as `lspci` prints them.
 */
const RID_PATTERN = /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/;

export function makeRid(bus: number, device: number, fn: number): number {
  if (bus < 0 || bus > 0xff || device < 0 || device > 0x1f || fn < 0 || fn > 7) {
    throw new RangeError(`bus ${bus}, device ${device}, function ${fn} is not a PCI requester ID`);
  }
  return (bus << 8) | (device << 3) | fn;
}

/** Parses `bb:dd.f`; returns undefined when the text is not a requester ID. */
export function parseRid(text: string): number | undefined {
  const m = RID_PATTERN.exec(text);
  if (!m) return undefined;
  const device = Number.parseInt(m[2]!, 16);
  if (device > 0x1f) return undefined;
  return makeRid(Number.parseInt(m[1]!, 16), device, Number(m[3]));
}

export function formatRid(rid: number): string {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `${hex(rid >> 8)}:${hex((rid >> 3) & 0x1f)}.${rid & 7}`;
}
