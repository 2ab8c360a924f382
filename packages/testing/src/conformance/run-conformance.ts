/**
 * The plugin conformance kit: one call registers the vendor-neutral iommufd suite for a plugin in the
 * current vitest file. Every case builds a fresh system with the plugin and checks kernel behaviour end to
 * end — map, DMA, unmap, attach rules, lifetimes, PASIDs, dirty tracking, page faults, interrupt remapping
 * when the plugin has it and, when the plugin supplies nesting hooks, vIOMMU nesting, user invalidation
 * and vEVENTQ.
 *
 * ```ts
 * import { runConformance } from '@iommukit/testing/conformance';
 * import plugin from '../src/index.js';
 * runConformance(plugin, { instanceOptions: {}, nesting: myNestingHooks });
 * ```
 */
import type { IommuPlugin } from '@iommukit/core';
import { afterEach, beforeEach, describe } from 'vitest';
import { createHarness, type Harness } from './harness.js';
import type { ConformanceOptions } from './options.js';
import { attachCases } from './suites/attach.js';
import { capabilityCases } from './suites/capabilities.js';
import { interruptRemappingCases } from './suites/interrupt-remapping.js';
import { ioasCases } from './suites/ioas.js';
import { iopfCases } from './suites/iopf.js';
import { lifetimeCases } from './suites/lifetime.js';
import { msiCases } from './suites/msi.js';
import { nestingCases } from './suites/nesting.js';
import { pasidCases } from './suites/pasid.js';

export function runConformance(plugin: IommuPlugin, options: ConformanceOptions = {}): void {
  describe(`iommukit conformance: ${plugin.meta.name} ${plugin.meta.version}`, () => {
    let harness: Harness | undefined;
    const h = (): Harness => {
      if (!harness) throw new Error('the conformance harness is only available inside a test');
      return harness;
    };
    beforeEach(async () => {
      harness = await createHarness(plugin, options);
    });
    afterEach(async () => {
      await harness?.dispose();
      harness = undefined;
    });

    describe('IOAS map/unmap and DMA', () => ioasCases(h));
    describe('attach, replace, detach', () => attachCases(h));
    describe('object lifetimes', () => lifetimeCases(h));
    describe('PASID attach', () => pasidCases(h, plugin));
    describe('hw_info, flags, dirty tracking', () => capabilityCases(h, plugin));
    describe('MSI doorbells', () => msiCases(h));
    // Groups with nothing applicable are left out: vitest reports an empty suite as an error.
    if (plugin.capabilities.pri) describe('I/O page faults', () => iopfCases(h, plugin));
    if (options.nesting) describe('nesting, vIOMMU, vEVENTQ', () => nestingCases(h, options.nesting));
    if (plugin.capabilities.interruptRemapping)
      describe('interrupt remapping', () => interruptRemappingCases(h));
  });
}
