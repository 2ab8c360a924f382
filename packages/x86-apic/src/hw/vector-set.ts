/**
 * A 256-bit vector array: the shape of the local APIC's IRR, ISR and TMR (SDM §11.8.4, figure 11-20). Bit v
 * stands for vector v; software reads it as eight 32-bit registers.
 */
export class VectorSet {
  private readonly words = new Uint32Array(8);

  has(vector: number): boolean {
    return ((this.words[vector >>> 5]! >>> (vector & 31)) & 1) === 1;
  }

  add(vector: number): void {
    this.words[vector >>> 5]! |= 1 << (vector & 31);
  }

  delete(vector: number): void {
    this.words[vector >>> 5]! &= ~(1 << (vector & 31));
  }

  /** The highest vector set, or -1 when none is. */
  highest(): number {
    for (let word = 7; word >= 0; word--) {
      const bits = this.words[word]!;
      if (bits !== 0) return word * 32 + 31 - Math.clz32(bits);
    }
    return -1;
  }

  /** Register `index` (0–7): vectors 32·index … 32·index + 31. */
  word(index: number): number {
    return this.words[index]!;
  }

  clear(): void {
    this.words.fill(0);
  }
}
