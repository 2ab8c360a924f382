/**
 * Interrupt remapping, for plugins whose capabilities say they have it (x86 IOMMUs): the driver's IR
 * domain programs entries the hardware honours, an interrupt request the table does not allow is blocked
 * and reported as a fault, and a changed entry takes effect once invalidated. Requests are sent by the
 * devices themselves (an MSI write into the interrupt window) and observed at the remapping unit.
 */
import type {
  EndpointDevice,
  InterruptRemappingDriver,
  InterruptRemappingHardware,
  X86Interrupt,
} from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

const INTERRUPT: X86Interrupt = {
  vector: 0x41,
  destination: 1,
  destinationMode: 'physical',
  deliveryMode: 'fixed',
  trigger: 'edge',
};

function remapping(h: Harness): { unit: InterruptRemappingHardware; ir: InterruptRemappingDriver } {
  const instance = h.system.iommu('iommu0');
  const unit = instance.hardware.interruptRemapping;
  const ir = instance.driver.interruptRemapping;
  expect(unit, 'capabilities.interruptRemapping: the hardware must have a remapping unit').toBeDefined();
  expect(ir, 'capabilities.interruptRemapping: the driver must offer interruptRemapping').toBeDefined();
  return { unit: unit!, ir: ir! };
}

/** What the unit makes of `device` sending the message of entry `index` (the device sends it too). */
function send(h: Harness, device: EndpointDevice, message: { address: bigint; data: number }) {
  device.msiWrite(message.address, message.data);
  return remapping(h).unit.request(device.streamId, message.address, message.data);
}

export function interruptRemappingCases(h: () => Harness): void {
  it('remap: a programmed entry turns the device’s message into the interrupt it names', () => {
    const { ir } = remapping(h());
    const { dev0 } = h();
    const index = ir.allocate(dev0, 2);
    const other = { ...INTERRUPT, vector: 0x52, destination: 3, trigger: 'level' as const };
    ir.program(dev0, index, { kind: 'remap', interrupt: INTERRUPT });
    ir.program(dev0, index + 1, { kind: 'remap', interrupt: other });
    expect(send(h(), dev0, ir.compose(dev0, index))).toMatchObject({
      kind: 'remapped',
      interrupt: INTERRUPT,
    });
    expect(send(h(), dev0, ir.compose(dev0, index + 1))).toMatchObject({
      kind: 'remapped',
      interrupt: other,
    });
  });

  it('block: a freed entry blocks the request; the fault is recorded and the driver reports it for the device', () => {
    const { system, dev0, service } = h();
    const { ir } = remapping(h());
    const index = ir.allocate(dev0, 1);
    ir.program(dev0, index, { kind: 'remap', interrupt: INTERRUPT });
    const message = ir.compose(dev0, index);
    ir.free(dev0, index, 1);
    const outcome = send(h(), dev0, message);
    expect(outcome).toMatchObject({ kind: 'blocked', fault: { kind: 'interrupt', streamId: dev0.streamId } });
    service();
    const faults = system.iommu('iommu0').faults.records;
    expect(faults.map((f) => [f.fault.kind, f.device])).toContainEqual(['interrupt', 'dev0']);
  });

  it('block: another device sending this device’s message does not get its interrupt', () => {
    const { dev0, dev1 } = h();
    const { ir } = remapping(h());
    const index = ir.allocate(dev0, 1);
    ir.program(dev0, index, { kind: 'remap', interrupt: INTERRUPT });
    const outcome = send(h(), dev1, ir.compose(dev0, index));
    expect(outcome.kind === 'remapped' && outcome.interrupt.vector === INTERRUPT.vector).toBe(false);
  });

  it('invalidate to see a change: a reprogrammed entry delivers its new interrupt once invalidated', () => {
    const { dev0 } = h();
    const { ir } = remapping(h());
    const index = ir.allocate(dev0, 1);
    const message = ir.compose(dev0, index);
    ir.program(dev0, index, { kind: 'remap', interrupt: INTERRUPT });
    expect(send(h(), dev0, message)).toMatchObject({ interrupt: INTERRUPT });
    const moved = { ...INTERRUPT, vector: 0x63, destination: 2 };
    ir.program(dev0, index, { kind: 'remap', interrupt: moved }, { invalidate: false });
    ir.invalidate(dev0, index, 1);
    expect(send(h(), dev0, message)).toMatchObject({ kind: 'remapped', interrupt: moved });
    const back = { ...INTERRUPT, vector: 0x74 };
    ir.program(dev0, index, { kind: 'remap', interrupt: back });
    expect(send(h(), dev0, message)).toMatchObject({ kind: 'remapped', interrupt: back });
  });

  it('misuse: an entry the device does not own is EINVAL; posting without the capability EOPNOTSUPP', () => {
    const { dev0, dev1 } = h();
    const { ir } = remapping(h());
    const index = ir.allocate(dev0, 1);
    expectErrno(() => ir.program(dev1, index, { kind: 'remap', interrupt: INTERRUPT }), 'EINVAL');
    expectErrno(() => ir.compose(dev1, index), 'EINVAL');
    expectErrno(() => ir.free(dev1, index, 1), 'EINVAL');
    expectErrno(() => ir.allocate(dev0, 0), 'EINVAL');
    if (!ir.capabilities.posting)
      expectErrno(
        () => ir.program(dev0, index, { kind: 'post', descriptor: 0x1000n, vector: 0x30 }),
        'EOPNOTSUPP',
      );
  });
}
