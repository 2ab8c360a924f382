/**
 * The MSI scenario steps: set up a kernel-owned device's MSIs, and send a vector and check where it went —
 * refused by the IOMMU, dropped by the interrupt controller, left pending, or taken by a CPU.
 */
import { toHex } from '../address/address.js';
import type { EndpointDevice } from '../device/endpoint.js';
import type { IMsiController, MsiOutcome } from '../msi/msi-controller.js';
import type { System } from '../system/system.js';
import { describeFailure, faultCode, StepFailure } from './step-reporting.js';

export interface MsiExpectation {
  readonly expect: 'delivered' | 'pending' | 'dropped' | 'fault';
  readonly cpu?: number | undefined;
  readonly fault?: string | undefined;
}

export function runMsiSetup(system: System, deviceName: string, count: number): string {
  const vectors = system.setupKernelMsi(deviceName, count);
  const device = system.device(deviceName);
  const first = vectors[0]!;
  const address = device.msix.message(0)!.address;
  const via =
    address === first.message.address
      ? ''
      : ` (the SW MSI cookie maps doorbell ${toHex(first.message.address)} there)`;
  const events = vectors.map((v) => `event ${v.eventId} → INTID ${v.intid} on CPU${v.cpu}`).join(', ');
  return `${deviceName}: ${vectors.length} MSI vector(s) on ${first.doorbell.name}: ${events}; MSI address ${toHex(address)}${via}`;
}

/**
 * Sends MSI-X `vector` of `device` and checks the outcome against `want`. `controller` is where the write
 * should arrive (the host's, for a host device or an assigned one); `afterDelivery` runs when it was
 * delivered (a VMM forwarding it into a guest) and may replace the outcome checked.
 */
export function sendMsi(
  device: EndpointDevice,
  vector: number,
  controller: IMsiController,
  want: MsiExpectation,
  afterDelivery?: (outcome: MsiOutcome) => { outcome: MsiOutcome; where: string },
): string {
  controller.takeOutcomes();
  const message = device.msix.message(vector);
  if (!message)
    throw new StepFailure(`${device.name} MSI-X vector ${vector} is not set up (masked or unprogrammed)`);
  const where = `${device.name} MSI vector ${vector}: data ${toHex(message.data)} to ${toHex(message.address)}`;
  const result = device.signalMsi(vector)!;
  if (!result.ok) {
    const code = faultCode(result);
    const what = describeFailure(result);
    if (want.expect !== 'fault') throw new StepFailure(`${where} → ${what}, expected ${want.expect}`);
    if (want.fault && code !== want.fault)
      throw new StepFailure(`${where} → ${what}, expected fault ${want.fault}`);
    return `${where} → ${what} (as expected)`;
  }
  const hpas = result.hpas.map((a) => toHex(a)).join(', ');
  let outcome = controller.takeOutcomes().at(-1);
  if (!outcome) throw new StepFailure(`${where} → HPA ${hpas}, which is no MSI doorbell: nothing arrived`);
  let path = `${where} → HPA ${hpas} → ${describeMsiOutcome(outcome)}`;
  if (outcome.kind === 'delivered' && afterDelivery) {
    const next = afterDelivery(outcome);
    outcome = next.outcome;
    path += ` → ${next.where} → ${describeMsiOutcome(outcome)}`;
  }
  return checkOutcome(outcome, want, path);
}

export function checkOutcome(outcome: MsiOutcome, want: MsiExpectation, path: string): string {
  if (outcome.kind !== want.expect) throw new StepFailure(`${path}; expected ${want.expect}`);
  if (outcome.kind === 'delivered' && want.cpu !== undefined && outcome.arrival.cpu !== want.cpu)
    throw new StepFailure(`${path}; expected CPU${want.cpu}`);
  return `${path} (as expected)`;
}

export function describeMsiOutcome(outcome: MsiOutcome): string {
  switch (outcome.kind) {
    case 'delivered': {
      const a = outcome.arrival;
      return `${a.controller}: DeviceID ${toHex(a.deviceId)} EventID ${a.eventId} → INTID ${a.intid} taken by CPU${a.cpu} (priority ${toHex(a.priority)})`;
    }
    case 'pending':
      return `DeviceID ${toHex(outcome.deviceId)} EventID ${outcome.eventId} → INTID ${outcome.intid} pending (disabled)`;
    case 'dropped':
      return `DeviceID ${toHex(outcome.deviceId)} EventID ${outcome.eventId} dropped: ${outcome.reason}`;
  }
}
