import { describe, expect, it } from 'vitest';
import { MSI_ADDR, RAM_BASE, rig, UNMAPPED } from '../../test/queue-fixtures.js';
import { activeGlobalErrors } from './register-protocols.js';
import {
  GERROR_CMDQ_ERR,
  GERROR_MSI_EVENTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  GERROR_SFM_ERR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  REG,
} from './regs.js';

describe('interrupt delivery (SMMUv3 §3.18, §6.3.16)', () => {
  it('a wired line pulses only while IRQ_CTRL enables the source; its handler runs at service time', () => {
    const r = rig();
    const { interrupts } = r.queues;
    let ran = 0;
    r.line('eventq').connect(() => ran++);
    expect(interrupts.signal('eventq')).toBe(false);
    expect(r.line('eventq').raised).toBe(0);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    expect(interrupts.signal('eventq')).toBe(true);
    expect(r.line('eventq').raised).toBe(1);
    expect(ran).toBe(0);
    r.ic.service();
    expect(ran).toBe(1);
    expect(r.line('gerror').raised).toBe(0);
  });

  it('an MSI is a 32-bit write of *_IRQ_CFG1 to the *_IRQ_CFG0 address, only while ADDR != 0', () => {
    const r = rig();
    const { interrupts } = r.queues;
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    interrupts.signal('eventq'); // ADDR == 0: wired only
    expect(interrupts.msiWrites).toBe(0);
    r.mmio(REG.IRQ_CTRL, 0);
    // Bits [1:0] of CFG0 are RES0: a misaligned address is stored aligned.
    r.mmio64(REG.EVENTQ_IRQ_CFG0, MSI_ADDR + 0x13);
    r.mmio(REG.EVENTQ_IRQ_CFG1, 0xcafe_f00d);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    interrupts.signal('eventq');
    expect(r.ram.read32(MSI_ADDR + 0x10 - RAM_BASE)).toBe(0xcafe_f00d);
    expect(r.words(MSI_ADDR + 0x14, 1)).toEqual([0]);
    expect(r.line('eventq').raised).toBe(2); // the wired line as well (§3.18.2: both may be used)
    expect(interrupts.msiWrites).toBe(1);
  });

  it('the GERROR MSI uses GERROR_IRQ_CFG0/1', () => {
    const r = rig();
    r.mmio64(REG.GERROR_IRQ_CFG0, MSI_ADDR + 4);
    r.mmio(REG.GERROR_IRQ_CFG1, 0x77);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    r.queues.interrupts.raiseGlobalError(GERROR_SFM_ERR);
    expect(r.words(MSI_ADDR + 4, 1)).toEqual([0x77]);
    expect(r.line('gerror').raised).toBe(1);
  });

  it('without MSIs nothing is written; without wired IRQs no line exists', () => {
    const wiredOnly = rig({ options: { msi: false } });
    wiredOnly.mmio64(REG.EVENTQ_IRQ_CFG0, MSI_ADDR); // RES0 without MSI (§6.3.30)
    wiredOnly.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    wiredOnly.queues.interrupts.signal('eventq');
    expect(wiredOnly.queues.interrupts.msiWrites).toBe(0);
    expect(wiredOnly.line('eventq').raised).toBe(1);

    const msiOnly = rig({ options: { wiredIrqs: false } });
    expect(msiOnly.queues.interrupts.lines).toEqual({});
    msiOnly.mmio64(REG.EVENTQ_IRQ_CFG0, MSI_ADDR);
    msiOnly.mmio(REG.EVENTQ_IRQ_CFG1, 9);
    msiOnly.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    msiOnly.queues.interrupts.signal('eventq');
    expect(msiOnly.words(MSI_ADDR, 1)).toEqual([9]);
    expect(msiOnly.line('eventq').raised).toBe(0);
  });

  it('an MSI to unmapped memory activates MSI_EVENTQ_ABT_ERR, which triggers the GERROR interrupt', () => {
    const r = rig();
    r.mmio64(REG.EVENTQ_IRQ_CFG0, UNMAPPED);
    r.mmio64(REG.GERROR_IRQ_CFG0, MSI_ADDR);
    r.mmio(REG.GERROR_IRQ_CFG1, 0x42);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN);
    r.queues.interrupts.signal('eventq');
    expect(r.read(REG.GERROR)).toBe(GERROR_MSI_EVENTQ_ABT_ERR);
    expect(r.line('gerror').raised).toBe(1);
    expect(r.words(MSI_ADDR, 1)).toEqual([0x42]);
    expect(r.queues.interrupts.msiAborts).toBe(1);
  });

  it('an aborted GERROR MSI sets MSI_GERROR_ABT_ERR and sends no further GERROR interrupt (§7.5.1)', () => {
    const r = rig();
    r.mmio64(REG.GERROR_IRQ_CFG0, UNMAPPED);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    r.queues.interrupts.raiseGlobalError(GERROR_CMDQ_ERR);
    expect(r.read(REG.GERROR)).toBe(GERROR_CMDQ_ERR | GERROR_MSI_GERROR_ABT_ERR);
    expect(r.queues.interrupts.msiWrites).toBe(1);
    expect(r.line('gerror').raised).toBe(1);
  });
});

describe('GERROR raising (SMMUv3 §7.5)', () => {
  it('toggles a bit only when its error is inactive, and signals only what became active', () => {
    const r = rig();
    const { interrupts } = r.queues;
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    expect(interrupts.raiseGlobalError(GERROR_CMDQ_ERR)).toBe(GERROR_CMDQ_ERR);
    expect(interrupts.raiseGlobalError(GERROR_CMDQ_ERR)).toBe(0);
    expect(r.read(REG.GERROR)).toBe(GERROR_CMDQ_ERR);
    expect(r.line('gerror').raised).toBe(1);
    // Acknowledged: the next occurrence toggles the bit back to 0, which is active again.
    r.mmio(REG.GERRORN, r.read(REG.GERROR));
    expect(interrupts.activeErrors()).toBe(0);
    expect(interrupts.raiseGlobalError(GERROR_CMDQ_ERR | GERROR_SFM_ERR)).toBe(
      GERROR_CMDQ_ERR | GERROR_SFM_ERR,
    );
    expect(r.read(REG.GERROR)).toBe(GERROR_SFM_ERR);
    expect(activeGlobalErrors(r.read(REG.GERROR), r.read(REG.GERRORN))).toBe(
      GERROR_CMDQ_ERR | GERROR_SFM_ERR,
    );
    expect(r.line('gerror').raised).toBe(2);
    expect(interrupts.globalErrors).toBe(3);
  });

  it('records the error with GERROR_IRQEN off, without an interrupt', () => {
    const r = rig();
    r.queues.interrupts.raiseGlobalError(GERROR_SFM_ERR);
    expect(r.read(REG.GERROR)).toBe(GERROR_SFM_ERR);
    expect(r.line('gerror').raised).toBe(0);
  });
});
