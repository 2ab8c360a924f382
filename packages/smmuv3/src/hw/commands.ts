/**
 * SMMUv3 commands (IHI 0070 §4), as one import: the command set and its constants (`command-set.ts`), the
 * per-command field layouts (`command-layouts.ts`, internal), the encoders and the Non-secure queue's
 * decoder with its CERROR_ILL rules (`command-codec.ts`), and the ranges invalidations cover
 * (`invalidation-ranges.ts`).
 */
export * from './command-codec.js';
export * from './command-set.js';
export * from './invalidation-ranges.js';
