/**
 * A small interrupt controller for core tests of the MSI path: one doorbell register that maps a write's
 * (DeviceID, data) to an interrupt the way an ITS does, interrupts that can be disabled (they stay
 * pending) and routed, two CPUs that record what they took. Writes from an unknown device or event are
 * dropped with a reason. No tables in memory and no commands: only the outcomes a scenario checks.
 */
import { z } from 'zod';
import { hpa } from '../src/address/address.js';
import type {
  IMsiController,
  InterruptArrival,
  MsiOutcome,
  MsiRequester,
  MsiVector,
} from '../src/msi/msi-controller.js';
import { defineMsiModule } from '../src/msi/msi-module.js';

/** Offset of the doorbell in the controller's page (as GITS_TRANSLATER sits at 0x40 of its frame). */
export const FAKE_DOORBELL_OFFSET = 0x40;
/** The first interrupt ID handed out (a GIC's first LPI). */
export const FAKE_FIRST_INTID = 8192;

interface Interrupt {
  readonly intid: number;
  cpu: number;
  enabled: boolean;
  priority: number;
  pending: boolean;
}

export const fakeItsModule = defineMsiModule({
  name: 'fake-its',
  description: 'a doorbell that maps (DeviceID, EventID) to interrupts on two CPUs',
  optionsSchema: z.strictObject({ base: z.number().int().min(0).multipleOf(0x1000).default(0x0808_0000) }),
  create({ options, bus }): IMsiController {
    const page = hpa(BigInt(options.base));
    const doorbell = { name: 'fake-its', address: hpa(page + BigInt(FAKE_DOORBELL_OFFSET)), page };
    const events = new Map<number, Interrupt[]>();
    const byIntid = new Map<number, Interrupt>();
    const cpus = [0, 1].map((cpu) => ({ cpu, arrivals: [] as InterruptArrival[] }));
    let outcomes: MsiOutcome[] = [];
    let nextIntid = FAKE_FIRST_INTID;
    let seq = 0;

    const arrive = (it: Interrupt, deviceId: number, eventId: number): InterruptArrival => {
      const arrival = { seq: ++seq, cpu: it.cpu, intid: it.intid, priority: it.priority };
      const full = { ...arrival, controller: 'fake-its', deviceId, eventId };
      cpus[it.cpu]!.arrivals.push(full);
      return full;
    };
    const receive = (deviceId: number | undefined, eventId: number): MsiOutcome => {
      const it = deviceId === undefined ? undefined : events.get(deviceId)?.[eventId];
      const id = deviceId ?? -1;
      if (!it) return { kind: 'dropped', deviceId: id, eventId, reason: 'no such device or event' };
      if (!it.enabled) {
        it.pending = true;
        return { kind: 'pending', intid: it.intid, deviceId: id, eventId };
      }
      return { kind: 'delivered', arrival: arrive(it, id, eventId) };
    };
    const interrupt = (intid: number): Interrupt => {
      const it = byIntid.get(intid);
      if (!it) throw new Error(`fake-its: no interrupt ${intid}`);
      return it;
    };

    bus.addMmio('fake-its', page, 0x1000, {
      read: () => 0,
      write: (offset, _size, value, deviceId) => {
        if (offset === FAKE_DOORBELL_OFFSET) outcomes.push(receive(deviceId, value));
      },
    });
    return {
      kind: 'fake-its',
      doorbells: [doorbell],
      doorbellFor: () => doorbell,
      cpus,
      allocateVectors(device: MsiRequester, count: number): readonly MsiVector[] {
        const list = Array.from({ length: count }, (_, eventId) => ({
          intid: nextIntid++,
          cpu: eventId % cpus.length,
          enabled: true,
          priority: 0xa0,
          pending: false,
        }));
        events.set(device.deviceId, list);
        for (const it of list) byIntid.set(it.intid, it);
        return list.map((it, eventId) => ({
          message: { address: doorbell.address, data: eventId },
          eventId,
          intid: it.intid,
          cpu: it.cpu,
          doorbell,
        }));
      },
      freeVectors(device) {
        for (const it of events.get(device.deviceId) ?? []) byIntid.delete(it.intid);
        events.delete(device.deviceId);
      },
      setAffinity: (intid, cpu) => {
        interrupt(intid).cpu = cpu;
      },
      configure(intid, change) {
        const it = interrupt(intid);
        if (change.priority !== undefined) it.priority = change.priority;
        if (change.enabled !== undefined) it.enabled = change.enabled;
      },
      stateOf: (intid) => (interrupt(intid).pending ? 'pending' : 'inactive'),
      requestIrq: () => () => {},
      takeOutcomes() {
        const taken = outcomes;
        outcomes = [];
        return taken;
      },
      service: () => 0,
      dispose: () => bus.removeRegion('fake-its'),
    };
  },
  createVirtual() {
    throw new Error('fake-its has no virtual controller');
  },
});
