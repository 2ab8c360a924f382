/**
 * @iommukit/pagetables: format-driven IOMMU page tables (the role of Linux io-pgtable / generic_pt) on the
 * iommukit memory bus, and the hardware walker the IOMMU models share. See README.md.
 */
export * from './address-run.js';
export * from './amd/v1-descriptors.js';
export * from './amd/v1-format.js';
export * from './format.js';
export * from './io-page-table.js';
export * from './leaf-scan.js';
export * from './radix-format.js';
export * from './table-builder.js';
export * from './table-walk-cache.js';
export * from './vmsa/descriptors.js';
export * from './vmsa/geometry.js';
export * from './vmsa/permissions.js';
export * from './vmsa/registers.js';
export * from './vmsa/vmsa-format.js';
export * from './vtd/ss-descriptors.js';
export * from './vtd/ss-format.js';
export * from './walk.js';
export * from './walk-trace.js';
export * from './x86/descriptors.js';
export * from './x86/x86-format.js';
