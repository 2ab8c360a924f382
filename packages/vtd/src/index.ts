/**
 * @iommukit/vtd: the Intel VT-d hardware model, its host driver and host-side nesting, and the plugin
 * (registry name `vtd`). See README.md.
 */
export * from './hw/features.js';
