import { RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { featuresFromOptions, Smmuv3OptionsSchema } from './options.js';
import {
  ackFor,
  acknowledgedGlobalErrors,
  activeGlobalErrors,
  gbpaAfterWrite,
  irqCtrlAckFor,
  toggleGlobalError,
} from './register-protocols.js';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  GBPA_ABORT,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  GERROR_EVENTQ_ABT_ERR,
  GERROR_SFM_ERR,
  REG,
  registerTable,
  SMMU_MMIO_SIZE,
} from './regs.js';

describe('GERROR / GERRORN', () => {
  it('activates an error by toggling GERROR and deactivates it when software copies the bit to GERRORN', () => {
    let gerror = 0;
    let gerrorn = 0;
    gerror = toggleGlobalError(gerror, gerrorn, GERROR_CMDQ_ERR);
    expect(gerror).toBe(GERROR_CMDQ_ERR);
    expect(activeGlobalErrors(gerror, gerrorn)).toBe(GERROR_CMDQ_ERR);
    // A second occurrence while active does not toggle it back.
    expect(toggleGlobalError(gerror, gerrorn, GERROR_CMDQ_ERR)).toBe(gerror);
    const before = gerrorn;
    gerrorn = gerror;
    expect(acknowledgedGlobalErrors(gerror, before, gerrorn)).toBe(GERROR_CMDQ_ERR);
    expect(activeGlobalErrors(gerror, gerrorn)).toBe(0);
    // The next occurrence toggles GERROR back to 0, which is active again (0 ≠ 1).
    gerror = toggleGlobalError(gerror, gerrorn, GERROR_CMDQ_ERR);
    expect(gerror).toBe(0);
    expect(activeGlobalErrors(gerror, gerrorn)).toBe(GERROR_CMDQ_ERR);
  });

  it('toggles only the inactive bits of several errors raised together', () => {
    const gerror = toggleGlobalError(0, 0, GERROR_EVENTQ_ABT_ERR);
    const next = toggleGlobalError(gerror, 0, GERROR_EVENTQ_ABT_ERR | GERROR_SFM_ERR);
    expect(next).toBe(GERROR_EVENTQ_ABT_ERR | GERROR_SFM_ERR);
    expect(activeGlobalErrors(next, 0)).toBe(GERROR_EVENTQ_ABT_ERR | GERROR_SFM_ERR);
    // Acknowledging one leaves the other active.
    expect(acknowledgedGlobalErrors(next, 0, GERROR_SFM_ERR)).toBe(GERROR_SFM_ERR);
    expect(activeGlobalErrors(next, GERROR_SFM_ERR)).toBe(GERROR_EVENTQ_ABT_ERR);
  });
});

describe('gbpaAfterWrite', () => {
  it('completes an update at once: the attributes stay, Update reads 0', () => {
    expect(gbpaAfterWrite(GBPA_UPDATE | GBPA_ABORT | 0x1000, 0x1000)).toBe(GBPA_ABORT | 0x1000);
  });

  it('ignores a write without Update', () => {
    expect(gbpaAfterWrite(GBPA_ABORT, 0x1000)).toBe(0x1000);
  });

  it('works as the GBPA write hook of a RegisterFile', () => {
    const options = Smmuv3OptionsSchema.parse({});
    const regs = new RegisterFile(SMMU_MMIO_SIZE, registerTable(featuresFromOptions(options), options));
    regs.onWrite(REG.GBPA, (value, old) => regs.set(REG.GBPA, gbpaAfterWrite(value, old)));
    regs.write(REG.GBPA, 4, GBPA_ABORT);
    expect(regs.read(REG.GBPA, 4)).toBe(0x1000);
    regs.write(REG.GBPA, 4, (GBPA_UPDATE | GBPA_ABORT) >>> 0);
    expect(regs.read(REG.GBPA, 4)).toBe(GBPA_ABORT);
  });
});

describe('acknowledgement registers', () => {
  it('CR0ACK mirrors every architected CR0 field and no reserved bit', () => {
    const enables = CR0_SMMUEN | CR0_PRIQEN | CR0_EVENTQEN | CR0_CMDQEN | CR0_ATSCHK;
    expect(ackFor(enables)).toBe(enables);
    expect(ackFor(0xffff_ffff)).toBe(0x5df); // bits 0–4, VMW [8:6], DPT_WALK_EN [10]
    expect(ackFor(CR0_SMMUEN | (1 << 5) | (1 << 9) | (1 << 31))).toBe(CR0_SMMUEN);
  });

  it('IRQ_CTRLACK mirrors GERROR_IRQEN, PRIQ_IRQEN and EVENTQ_IRQEN', () => {
    expect(irqCtrlAckFor(0b101)).toBe(0b101);
    expect(irqCtrlAckFor(0xffff_ffff)).toBe(0b111);
  });
});
