/** The plugin conformance kit, run against SMMUv3, nesting included (guest-side hooks in nesting-hooks.ts). */
import { runConformance } from '@iommukit/testing/conformance';
import { smmuv3Plugin } from '../src/index.js';
import { smmuv3NestingHooks } from './nesting-hooks.js';

runConformance(smmuv3Plugin, { nesting: smmuv3NestingHooks });
