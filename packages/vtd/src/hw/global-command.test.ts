import { RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { GlobalCommand, type GlobalCommandEffects } from './global-command.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import {
  GCMD_CFI,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_WBF,
  GSTS_CFIS,
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
  REG,
  TTM,
  VTD_MMIO_SIZE,
  vtdRegisterTable,
} from './regs.js';

function rig(options: object = {}) {
  const features = featuresFromOptions(VtdOptionsSchema.parse(options));
  const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
  const calls: string[] = [];
  const effects: GlobalCommandEffects = {
    translation: (on) => calls.push(`te ${on}`),
    rootTableSet: (s) => calls.push(`root ${s.rootTable.toString(16)} ttm ${s.ttm}`),
    queuedInvalidation: (on) => calls.push(`qi ${on}`),
    interruptTableSet: (lo, hi) => calls.push(`irta ${hi.toString(16)}:${lo.toString(16)}`),
    interruptRemapping: (on) => calls.push(`ir ${on}`),
    compatibilityFormat: (on) => calls.push(`cfi ${on}`),
  };
  const gc = new GlobalCommand(regs, features, effects);
  /** Writes GCMD as Linux does: the status's persistent bits with one command changed. */
  const command = (bits: number, on = true) => {
    const persistent = regs.read(REG.GSTS, 4) & (GCMD_TE | GCMD_QIE | GCMD_IRE);
    regs.write(REG.GCMD, 4, (on ? persistent | bits : persistent & ~bits) >>> 0);
  };
  const status = () => regs.read(REG.GSTS, 4) >>> 0;
  return { regs, gc, calls, command, status };
}

describe('GCMD/GSTS handshakes (§11.4.4, §11.4.5)', () => {
  it('SRTP latches RTADDR (address and TTM) and sets RTPS; later RTADDR writes change nothing until the next SRTP', () => {
    const { regs, gc, calls, command, status } = rig();
    regs.write(REG.RTADDR, 4, 0x1234_5000 | (TTM.SCALABLE << 10));
    regs.write(REG.RTADDR + 4, 4, 0x2);
    command(GCMD_SRTP);
    expect((status() & GSTS_RTPS) >>> 0).toBe(GSTS_RTPS);
    expect(gc.state).toEqual({ enabled: false, rootTable: 0x2_1234_5000, ttm: TTM.SCALABLE });
    regs.write(REG.RTADDR, 4, 0x9999_9000);
    expect(gc.state.rootTable).toBe(0x2_1234_5000);
    expect(calls).toEqual(['root 212345000 ttm 1']);
  });

  it('TE and the other persistent commands: status follows, state objects change only on a change', () => {
    const { gc, calls, command, status } = rig();
    const before = gc.state;
    command(GCMD_TE);
    expect((status() & GSTS_TES) >>> 0).toBe(GSTS_TES);
    expect(gc.state.enabled).toBe(true);
    expect(gc.state).not.toBe(before);
    const enabled = gc.state;
    command(GCMD_QIE);
    expect(gc.state).toBe(enabled);
    expect(status() & GSTS_QIES).toBe(GSTS_QIES);
    command(GCMD_IRE);
    expect(status() & GSTS_IRES).toBe(GSTS_IRES);
    command(GCMD_QIE, false);
    expect(status() & GSTS_QIES).toBe(0);
    expect((status() & GSTS_TES) >>> 0).toBe(GSTS_TES);
    expect(calls).toEqual(['te true', 'qi true', 'ir true', 'qi false']);
  });

  it('SIRTP latches IRTA; WBF completes at once; commands of absent features are ignored', () => {
    const { regs, calls, command, status, gc } = rig();
    regs.write(REG.IRTA, 4, 0x5000_080f);
    command(GCMD_SIRTP);
    expect(status() & GSTS_IRTPS).toBe(GSTS_IRTPS);
    expect(calls).toEqual(['irta 0:5000080f']);
    const before = gc.commands;
    command(GCMD_WBF);
    expect(gc.commands).toBe(before);
    const legacy = rig({
      scalableMode: false,
      interruptRemapping: false,
      extendedInterruptMode: false,
      postedInterrupts: false,
      queuedInvalidation: false,
      deviceTlb: false,
      pageRequests: false,
      pageRequestDrain: false,
    });
    legacy.command(GCMD_QIE);
    legacy.command(GCMD_IRE);
    expect(legacy.status()).toBe(0);
    expect(legacy.calls).toEqual([]);
  });

  it('clearing a persistent command clears its status and tells the unit off (TE, IRE, CFI)', () => {
    const { regs, gc, calls, command, status } = rig();
    command(GCMD_TE);
    command(GCMD_IRE);
    // CFI is written with the other persistent bits, as Linux does (GSTS read back with CFI set).
    regs.write(REG.GCMD, 4, (status() | GCMD_CFI) >>> 0);
    expect(status() & GSTS_CFIS).toBe(GSTS_CFIS);
    regs.write(REG.GCMD, 4, (status() & ~GCMD_CFI) >>> 0);
    expect(status() & GSTS_CFIS).toBe(0);
    command(GCMD_IRE, false);
    command(GCMD_TE, false);
    expect(status()).toBe(0);
    expect(gc.state.enabled).toBe(false);
    expect(calls).toEqual(['te true', 'ir true', 'cfi true', 'cfi false', 'ir false', 'te false']);
  });

  it('SIRTP latches both halves of IRTA', () => {
    const { regs, calls, command } = rig();
    regs.write(REG.IRTA, 4, 0x5000_000f);
    regs.write(REG.IRTA + 4, 4, 0x3);
    command(GCMD_SIRTP);
    expect(calls).toEqual(['irta 3:5000000f']);
  });

  it('counts every command performed, and none for a write that changes nothing', () => {
    const { gc, command } = rig({ writeBufferFlush: true });
    const counted = (bits: number, on = true) => {
      const before = gc.commands;
      command(bits, on);
      return gc.commands - before;
    };
    expect(counted(GCMD_TE)).toBe(1);
    expect(counted(GCMD_TE)).toBe(0);
    expect(counted(GCMD_SRTP)).toBe(1);
    expect(counted(GCMD_SIRTP)).toBe(1);
    expect(counted(GCMD_QIE)).toBe(1);
    expect(counted(GCMD_WBF)).toBe(1);
    expect(counted(GCMD_TE, false)).toBe(1);
    expect(gc.commands).toBe(6);
  });
});
