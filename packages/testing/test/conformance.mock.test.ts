/** The conformance kit, run against the mock plugin (every vendor plugin runs the same suite). */

import { mockNestingHooks, runConformance } from '../src/conformance/index.js';
import { mockPlugin } from '../src/index.js';

runConformance(mockPlugin, { nesting: mockNestingHooks });
