// A module resolve hook: importing vitest (or any vitest/… subpath) fails with the importer's URL.
export async function resolve(specifier, context, next) {
  if (specifier === 'vitest' || specifier.startsWith('vitest/') || specifier.startsWith('@vitest/')) {
    throw new Error(`runtime import of "${specifier}" from ${context.parentURL}`);
  }
  return next(specifier, context);
}
