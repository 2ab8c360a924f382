import { defineConfig } from 'vitest/config';
import { sharedTestConfig } from '../core/vitest.shared.js';

export default defineConfig(sharedTestConfig);
