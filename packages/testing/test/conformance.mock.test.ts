/** The conformance kit, run against the mock plugin (every vendor plugin runs the same suite). */
import { mockNestingHooks, mockPlugin, runConformance } from '../src/index.js';

runConformance(mockPlugin, { nesting: mockNestingHooks });
