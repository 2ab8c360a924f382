/** The plugin conformance kit, run against SMMUv3 (nesting hooks come with host-side nesting). */
import { runConformance } from '@iommukit/testing';
import { smmuv3Plugin } from '../src/index.js';

runConformance(smmuv3Plugin);
