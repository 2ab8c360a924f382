/** One problem in a configuration: where it is (`vms[0].viommu.mode`) and what is wrong there. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Thrown when a configuration cannot be used. It carries every problem found, not just the first, so a
 * user fixes a config in one pass. `code` is stable for programmatic checks.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ECONFIG';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown; source?: string }) {
    const where = options?.source ? ` in ${options.source}` : '';
    const noun = issues.length === 1 ? 'problem' : 'problems';
    super(
      `invalid configuration${where} (${issues.length} ${noun}):\n${formatConfigIssues(issues)}`,
      options,
    );
    this.issues = issues;
  }
}

/** Renders issues one per line as `path: message` (the root is shown as `(root)`). */
export function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((issue) => `  ${issue.path || '(root)'}: ${issue.message}`).join('\n');
}
