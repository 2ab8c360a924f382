/**
 * The plugin conformance kit, run against VT-d. The unit reports faults and page requests by MSI only, so
 * the system gets the x86 local APICs as its interrupt controller. Nesting is on the parent HWPT (VT-d has
 * no vIOMMU object).
 */
import { runConformance } from '@iommukit/testing/conformance';
import { x86ApicModule } from '@iommukit/x86-apic';
import { vtdPlugin } from '../src/index.js';
import { vtdNestingHooks } from './nesting-hooks.js';

runConformance(vtdPlugin, { msi: { module: x86ApicModule }, nesting: vtdNestingHooks });
