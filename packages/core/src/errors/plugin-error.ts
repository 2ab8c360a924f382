/** Stable codes for plugin loading and registration problems. */
export type PluginErrorCode =
  | 'PLUGIN_NOT_FOUND'
  | 'PLUGIN_LOAD_FAILED'
  | 'PLUGIN_NO_DEFAULT_EXPORT'
  | 'PLUGIN_MALFORMED'
  | 'PLUGIN_DUPLICATE';

/** Thrown when a vendor plugin cannot be found, loaded, or does not match the plugin contract. */
export class PluginError extends Error {
  override readonly name = 'PluginError';
  readonly code: PluginErrorCode;
  readonly plugin: string;

  constructor(code: PluginErrorCode, plugin: string, message: string, options?: { cause?: unknown }) {
    super(`${code}: plugin "${plugin}": ${message}`, options);
    this.code = code;
    this.plugin = plugin;
  }
}
