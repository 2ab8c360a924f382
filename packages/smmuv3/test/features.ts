/**
 * The features of a default SMMUv3 instance (both stages, ATS, PRI, stalls, HTTU, RIL, 16-bit StreamIDs,
 * 20-bit SubstreamIDs, 48-bit OAS, 16-bit ASIDs and VMIDs), derived from the options' defaults (the
 * options test spells them out): the feature set codec and writer tests check against.
 */
import type { Smmuv3Features } from '../src/hw/features.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from '../src/hw/options.js';

export const DEFAULT_FEATURES: Smmuv3Features = featuresFromOptions(Smmuv3OptionsSchema.parse({}));
