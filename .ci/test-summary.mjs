#!/usr/bin/env node
// Totals the vitest JSON reports each package wrote (packages/*/test-report.json) into one closing line,
// "tests: N passed, N failed", so CI logs end with a count any reader (or tool) can check.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
let passed = 0;
let failed = 0;
let skipped = 0;
let reports = 0;
for (const name of readdirSync(packagesDir).sort()) {
  const file = join(packagesDir, name, 'test-report.json');
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  reports++;
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  console.log(
    `  @iommukit/${name}: ${report.numPassedTests} passed, ${report.numFailedTests} failed (${report.numTotalTestSuites} suites)`,
  );
}
if (reports === 0) {
  console.error('no test reports found: did the test task run?');
  process.exit(1);
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
