// Loaded with `node --import`: installs a resolve hook that refuses every import of a test framework.
import { register } from 'node:module';

register('./refuse-vitest.mjs', import.meta.url);
