/**
 * The plugin conformance kit, run against the AMD IOMMU. The unit reports events by MSI only, so the system
 * gets the x86 local APICs as its interrupt controller.
 */
import { runConformance } from '@iommukit/testing/conformance';
import { x86ApicModule } from '@iommukit/x86-apic';
import { amdViPlugin } from '../src/index.js';

runConformance(amdViPlugin, { msi: { module: x86ApicModule } });
