import fc from 'fast-check';
import { inject } from 'vitest';

// Every test file starts with the run's seed, so each fc.assert replays the same cases (fc-seed.ts).
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: inject('fcSeed') });
