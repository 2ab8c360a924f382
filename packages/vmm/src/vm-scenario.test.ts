/**
 * The VM steps of a scenario, run as the CLI runs them (`runScenario` with `vmScenarioExtension`): what each
 * step does to the VM and the line it reports, and the failures a wrong step gets.
 */
import { describe, expect, it } from 'vitest';
import { runSteps, vmSystem, vtdVmSystem } from '../test/vm-system.js';
import type { Vm } from './vm.js';

const NESTED_AND_EMULATED = {
  viommus: [{ mode: 'nested' }, { mode: 'emulated' }],
  emulatedDevices: ['edu0'],
};

describe('VM scenario steps', () => {
  it('power, guest buffers, guest DMA mappings, checks, unmaps and the guest fault log', async () => {
    const system = await vmSystem({ vm: NESTED_AND_EMULATED });
    const [power] = runSteps(system, [{ op: 'vm-power', vm: 'vm0', state: 'on' }]);
    const hostBase = Number((system.vm('vm0') as Vm).memory.hostBase);
    const ran = runSteps(system, [
      { op: 'guest-alloc', vm: 'vm0', buffer: 'b', size: '4KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'b', mapping: 'm' },
      { op: 'dma', device: 'nic0', access: 'write', mapping: 'm', data: 'hi' },
      { op: 'guest-check', vm: 'vm0', buffer: 'b', data: 'hi' },
      { op: 'guest-check', vm: 'vm0', buffer: 'b', offset: 1, data: 'i' },
      { op: 'guest-unmap', vm: 'vm0', device: 'nic0', mapping: 'm' },
      {
        op: 'dma',
        device: 'nic0',
        access: 'write',
        mapping: 'm',
        data: 'x',
        expect: 'fault',
        fault: 'F_TRANSLATION',
      },
      { op: 'guest-faults', vm: 'vm0', expect: [{ fault: 'F_TRANSLATION', device: 'nic0' }] },
      { op: 'guest-faults', vm: 'vm0', expect: [] },
      { op: 'vm-power', vm: 'vm0', state: 'off' },
    ]);
    expect(power).toEqual([
      true,
      `vm0 powered on: 64MiB of guest RAM at host 0x${hostBase.toString(16)}, 1 assigned device(s), nested + emulated vIOMMU; the guest's IOMMU driver probed it`,
    ]);
    const gpa = 0x4000_6000; // the guest's drivers took the pages below for their queues and tables
    expect(ran).toEqual([
      [true, `vm0 guest buffer b: 4KiB at GPA 0x${gpa.toString(16)}`],
      [
        true,
        `vm0 maps b (GPA 0x${gpa.toString(16)}) for nic0 at IOVA 0xfffffffff000 (through the guest's IOMMU driver)`,
      ],
      [true, expect.stringContaining('nic0 DMA write at IOVA 0xfffffffff000')],
      [
        true,
        `vm0 b+0 holds "hi": GPA 0x${gpa.toString(16)}, host page HPA 0x${(hostBase + 0x6000).toString(16)}`,
      ],
      [
        true,
        `vm0 b+1 holds "i": GPA 0x${(gpa + 1).toString(16)}, host page HPA 0x${(hostBase + 0x6001).toString(16)}`,
      ],
      [true, 'vm0 unmaps m (IOVA 0xfffffffff000) for nic0; its driver invalidated'],
      [true, expect.stringContaining('fault F_TRANSLATION')],
      [true, 'vm0 guest IOMMU driver reported F_TRANSLATION stream 0x8 IOVA 0xfffffffff000 (nic0)'],
      [true, 'vm0 guest IOMMU driver reported nothing'],
      [true, 'vm0 powered off: guest, vIOMMU objects, devices and guest RAM released on the host'],
    ]);
    await system.dispose();
  });

  it('an emulated device is a scenario device while its VM is on; a VM without a vIOMMU maps GPAs', async () => {
    const system = await vmSystem({ vm: NESTED_AND_EMULATED });
    expect(
      runSteps(system, [{ op: 'dma', device: 'edu0', access: 'write', iova: 0x4000_0000, data: 'x' }])[0]![0],
    ).toBe(false); // off: no such device
    const ran = runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'e', size: '4KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'edu0', buffer: 'e', mapping: 'me' },
      { op: 'dma', device: 'edu0', access: 'write', mapping: 'me', data: 'em' },
      { op: 'guest-check', vm: 'vm0', buffer: 'e', data: 'em' },
      { op: 'guest-map', vm: 'vm0', device: 'edu0', buffer: 'e', mapping: 'ro', prot: 'r' },
      { op: 'dma', device: 'edu0', access: 'read', mapping: 'ro', length: 2 },
      {
        op: 'dma',
        device: 'edu0',
        access: 'write',
        mapping: 'ro',
        data: 'x',
        expect: 'fault',
        fault: 'F_PERMISSION',
      },
      { op: 'vm-power', vm: 'vm0', state: 'off' },
      { op: 'vm-power', vm: 'vm0', state: 'on', viommus: [] },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'p', size: '8KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'p', mapping: 'mp', prot: 'r' },
    ]);
    expect(ran.map(([ok, summary]) => (ok ? 'ok' : summary))).toEqual(Array(ran.length).fill('ok'));
    expect(ran[3]![1]).toMatch(
      /^edu0 DMA write at IOVA 0xfffffffff000 \(me\+0x0\) → HPA 0x4[0-9a-f]+: wrote 2 bytes$/,
    );
    const hostBase = (system.vm('vm0') as Vm).memory.hostBase;
    expect(ran[9]![1]).toBe(
      `vm0 powered on: 64MiB of guest RAM at host 0x${hostBase.toString(16)}, 1 assigned device(s), no vIOMMU`,
    );
    expect(ran[11]![1]).toMatch(
      /^vm0 maps p \(GPA (0x[0-9a-f]+)\) for nic0 at IOVA \1 \(no vIOMMU: the device uses the GPA\)$/,
    );
    await system.dispose();
  });

  it('guest actions of the plugin run on the chosen vIOMMU’s guest driver', async () => {
    const system = await vmSystem({ vm: NESTED_AND_EMULATED });
    const ran = runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-op', vm: 'vm0', action: 'commands', args: { commands: ['TLBI_NH_ALL'] } },
      {
        op: 'guest-op',
        vm: 'vm0',
        action: 'commands',
        args: { viommu: 'emulated', commands: ['TLBI_NH_ALL'] },
      },
    ]);
    expect(ran.slice(1)).toEqual([
      [true, 'guest submits 1 command(s) and a CMD_SYNC; all consumed'],
      [true, 'guest submits 1 command(s) and a CMD_SYNC; all consumed'],
    ]);
    expect(runSteps(system, [{ op: 'guest-op', vm: 'vm0', action: 'reboot', args: {} }])).toEqual([
      [false, 'plugin smmuv3 has no guest action "reboot"'],
    ]);
    expect(
      runSteps(system, [
        { op: 'guest-op', vm: 'vm0', action: 'commands', args: { viommu: 'other', commands: [] } },
      ]),
    ).toEqual([[false, 'vm0 has no other vIOMMU driver']]);
    runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'off' },
      { op: 'vm-power', vm: 'vm0', state: 'on', viommus: ['emulated'] },
    ]);
    expect(
      runSteps(system, [{ op: 'guest-op', vm: 'vm0', action: 'commands', args: { commands: [] } }]),
    ).toEqual([[false, 'vm0 has no nested vIOMMU driver']]);
    await system.dispose();
  });

  it('wrong steps fail with what is wrong', async () => {
    const system = await vmSystem();
    const fails = (step: Record<string, unknown>) => runSteps(system, [step])[0];
    runSteps(system, [{ op: 'vm-power', vm: 'vm0', state: 'on' }]);
    expect(fails({ op: 'guest-unmap', vm: 'vm0', device: 'nic0', mapping: 'nope' })).toEqual([
      false,
      'no mapping named "nope"',
    ]);
    // Buffers belong to the run that made them and to their VM.
    expect(fails({ op: 'guest-check', vm: 'vm0', buffer: 'b', data: 'x' })).toEqual([
      false,
      'vm0 has no guest buffer "b"',
    ]);
    expect(
      runSteps(system, [
        { op: 'guest-alloc', vm: 'vm0', buffer: 'b', size: '4KiB' },
        { op: 'guest-check', vm: 'vm0', buffer: 'b', offset: 2, data: 'ab' },
      ])[1],
    ).toEqual([false, 'vm0 b+2 holds hex:0000, expected "ab"']);
    expect(fails({ op: 'guest-faults', vm: 'vm0', expect: [{ fault: 'F_TRANSLATION' }] })).toEqual([
      false,
      'vm0 guest reported [], expected [F_TRANSLATION]',
    ]);
    expect(fails({ op: 'guest-msi-setup', vm: 'vm0', device: 'nic0' })).toEqual([
      false,
      'vm0 has no vITS: the system has no MSI controller (msi.controller)',
    ]);
    await system.dispose();
  });
  it('the page responses step: what an assigned device received since the step last looked, in order', async () => {
    const system = await vtdVmSystem();
    const unmapped = (data: string) => ({
      op: 'dma',
      device: 'nic0',
      access: 'write',
      iova: '0x4000_0000',
      data,
      pageRequest: true,
      expect: 'page-request',
    });
    const responses = (device: string, expect: string[]) => ({
      op: 'page-responses',
      vm: 'vm0',
      device,
      expect,
    });
    const results = runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'b', size: '4KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'b', mapping: 'm' },
      unmapped('a'),
      responses('nic0', ['invalid']),
      responses('nic0', []),
      unmapped('b'),
      responses('nic0', ['success']),
    ]);
    expect(results.slice(3)).toEqual([
      [true, 'nic0 DMA write at IOVA 0x40000000 → page request sent (group 0) (as expected)'],
      [true, 'nic0 received page responses invalid (group 0)'],
      [true, 'nic0 received no page response'],
      [true, 'nic0 DMA write at IOVA 0x40000000 → page request sent (group 1) (as expected)'],
      [false, 'nic0 received page responses [invalid (group 1)], expected [success]'],
    ]);
    const fails = (step: Record<string, unknown>) => runSteps(system, [step])[0];
    expect(fails(responses('nic1', []))).toEqual([
      false,
      'nic1 has no PRI capability: it gets no page responses',
    ]);
    expect(fails(responses('nic2', []))).toEqual([false, 'vm0: no assigned device "nic2"']);
    await system.dispose();
  });

  it('MSI steps: the guest sets up vectors, moves one, masks and unmasks with and without INV', async () => {
    const system = await vmSystem({
      msi: true,
      vm: { viommus: [{ mode: 'nested' }], msi: { mode: 'passthrough' } },
    });
    const ran = runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-msi-setup', vm: 'vm0', device: 'nic0', vectors: 2 },
      { op: 'guest-msi', vm: 'vm0', device: 'nic0', vector: 1, cpu: 1 },
      { op: 'guest-irq-affinity', vm: 'vm0', device: 'nic0', vector: 1, cpu: 0 },
      { op: 'guest-msi', vm: 'vm0', device: 'nic0', vector: 1, cpu: 0 },
      { op: 'guest-irq-config', vm: 'vm0', device: 'nic0', priority: 0x40 },
      { op: 'guest-msi', vm: 'vm0', device: 'nic0', cpu: 0 }, // the redistributor caches the new byte
      {
        op: 'guest-irq-config',
        vm: 'vm0',
        device: 'nic0',
        enabled: false,
        priority: 0x80,
        invalidate: false,
      },
      { op: 'guest-msi', vm: 'vm0', device: 'nic0', cpu: 0 }, // the cached configuration still says enabled
      { op: 'guest-irq-config', vm: 'vm0', device: 'nic0', enabled: false },
      { op: 'guest-msi', vm: 'vm0', device: 'nic0', expect: 'pending' },
      { op: 'guest-irq-config', vm: 'vm0', device: 'nic0', enabled: true },
      { op: 'guest-irq-config', vm: 'vm0', device: 'nic0' },
    ]);
    expect(ran.map(([ok, summary]) => (ok ? 'ok' : summary))).toEqual(Array(ran.length).fill('ok'));
    expect(ran[1]![1]).toMatch(
      /^nic0: guest vITS event 0 → vINTID 8192 on vCPU0, event 1 → vINTID 8193 on vCPU1, guest MSI address 0x8000040; host its0 INTID \d+, INTID \d+; ioasMapMsi put doorbell page 0x8090000 at GPA 0x8090000; the device writes 0x8000040$/,
    );
    expect(ran[2]![1]).toContain(
      "→ VMM injects into vm0's vITS → vm0.vits: DeviceID 0x8 EventID 1 → INTID 8193 taken by CPU1",
    );
    expect(ran[3]![1]).toBe(
      'vm0: the guest moves nic0 vector 1 (vINTID 8193) from vCPU1 to vCPU0 (MOVI + SYNC)',
    );
    expect(ran[6]![1]).toContain('INTID 8192 taken by CPU0 (priority 0x40)');
    expect(ran[8]![1]).toContain('INTID 8192 taken by CPU0 (priority 0x40)');
    expect([ran[5]![1], ran[7]![1]]).toEqual([
      'vm0: the guest sets priority 0x40 of vINTID 8192 in its LPI configuration table, then INV + SYNC',
      'vm0: the guest masks and sets priority 0x80 of vINTID 8192 in its LPI configuration table and sends no INV: the redistributor keeps its cached configuration',
    ]);
    expect(ran.slice(9).map(([, summary]) => summary)).toEqual([
      'vm0: the guest masks vINTID 8192 in its LPI configuration table, then INV + SYNC',
      expect.stringContaining('INTID 8192 pending (disabled)'),
      'vm0: the guest unmasks vINTID 8192 in its LPI configuration table, then INV + SYNC',
      'vm0: the guest rewrites vINTID 8192 in its LPI configuration table, then INV + SYNC',
    ]);
    expect(
      runSteps(system, [{ op: 'guest-irq-affinity', vm: 'vm0', device: 'nic0', vector: 7, cpu: 0 }]),
    ).toEqual([[false, 'EINVAL: nic0 has no MSI vector 7']]);
    await system.dispose();
  });
  it('the guest fault log step: fault codes and devices must match, in order; what it reports', async () => {
    const system = await vmSystem({ vm: NESTED_AND_EMULATED });
    // Both devices get a DMA domain in the guest (their first mapping); 0x7000_0000 stays unmapped.
    runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'b', size: '4KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'b', mapping: 'm0' },
      { op: 'guest-map', vm: 'vm0', device: 'edu0', buffer: 'b', mapping: 'm1' },
    ]);
    const faults = [
      {
        op: 'dma',
        device: 'nic0',
        access: 'write',
        iova: 0x7000_0000,
        data: 'x',
        expect: 'fault',
        fault: 'F_TRANSLATION',
      },
      {
        op: 'dma',
        device: 'edu0',
        access: 'write',
        iova: 0x7000_0000,
        data: 'x',
        expect: 'fault',
        fault: 'F_TRANSLATION',
      },
    ];
    // After every step the VM's interrupts are serviced: the faults are in the guest's log already.
    runSteps(system, faults);
    const vm = system.vm('vm0') as Vm;
    expect(vm.guest.faults.records.map((f) => f.device)).toEqual(['nic0', 'edu0']);
    expect(
      runSteps(system, [
        {
          op: 'guest-faults',
          vm: 'vm0',
          expect: [{ fault: 'F_TRANSLATION' }, { fault: 'F_TRANSLATION', device: 'edu0' }],
        },
      ]),
    ).toEqual([
      [
        true,
        'vm0 guest IOMMU driver reported F_TRANSLATION stream 0x8 IOVA 0x70000000 (nic0); F_TRANSLATION stream 0x80 IOVA 0x70000000 (edu0)',
      ],
    ]);
    runSteps(system, faults);
    expect(
      runSteps(system, [
        {
          op: 'guest-faults',
          vm: 'vm0',
          expect: [{ fault: 'F_TRANSLATION', device: 'edu0' }, { fault: 'F_TRANSLATION' }],
        },
      ]),
    ).toEqual([
      [
        false,
        'vm0 guest reported [F_TRANSLATION (nic0), F_TRANSLATION (edu0)], expected [F_TRANSLATION (edu0), F_TRANSLATION]',
      ],
    ]);
    runSteps(system, faults.slice(0, 1));
    expect(
      runSteps(system, [{ op: 'guest-faults', vm: 'vm0', expect: [{ fault: 'F_PERMISSION' }] }]),
    ).toEqual([[false, 'vm0 guest reported [F_TRANSLATION (nic0)], expected [F_PERMISSION]']]);
    await system.dispose();
  });

  it('guest actions get the guest’s devices and buffers; the step runs only with a running VM’s vIOMMU', async () => {
    const system = await vmSystem({ vm: { viommus: [{ mode: 'nested' }] } });
    const ran = runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'b', size: '4KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'b', mapping: 'm' },
      { op: 'guest-op', vm: 'vm0', action: 'new-cd-table', args: { device: 'nic0' } },
      { op: 'dma', device: 'nic0', access: 'write', mapping: 'm', data: 'copy' },
      { op: 'guest-check', vm: 'vm0', buffer: 'b', data: 'copy' },
    ]);
    expect(ran.map(([ok, summary]) => (ok ? 'ok' : summary))).toEqual(Array(ran.length).fill('ok'));
    await system.dispose();
  });

  it('a guest buffer belongs to its VM; a powered-off VM’s emulated device is no scenario device', async () => {
    const system = await vmSystem({
      msi: true,
      vm: { emulatedDevices: ['edu0'] },
      vms: [{ name: 'vm1', memory: '32MiB', devices: ['nic1'] }],
    });
    const ran = runSteps(system, [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'vm-power', vm: 'vm1', state: 'on', msi: { mode: 'passthrough', rmr: false } },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'b', size: '4KiB' },
      { op: 'guest-check', vm: 'vm1', buffer: 'b', data: 'x' },
    ]);
    expect(ran[3]).toEqual([false, 'vm1 has no guest buffer "b"']);
    // vm1 was powered on with passthrough MSIs instead of its configured legacy cookie.
    expect(runSteps(system, [{ op: 'guest-msi-setup', vm: 'vm1', device: 'nic1' }])[0]![1]).toContain(
      'ioasMapMsi',
    );
    runSteps(system, [{ op: 'vm-power', vm: 'vm0', state: 'off' }]);
    expect(
      runSteps(system, [{ op: 'dma', device: 'edu0', access: 'read', iova: 0x4000_0000, length: 1 }]),
    ).toEqual([[false, expect.stringContaining('edu0')]]);
    expect(
      runSteps(system, [{ op: 'dma', device: 'edu0', access: 'read', iova: 0x4000_0000, length: 1 }])[0]![1],
    ).not.toContain('is off');
    await system.dispose();
  });
});
