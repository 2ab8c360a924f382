/** @iommukit/cli: the `iommukit` command, also callable in-process through `main`. */
export { builtinRegistry } from './builtin-plugins.js';
export { DEFAULT_CONFIG_PATH } from './commands/demo.js';
export { type CliIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './io.js';
export { main } from './main.js';
