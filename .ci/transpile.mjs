#!/usr/bin/env node
// The quick build behind `pnpm demo`: each package's sources become dist/*.js file by file with
// TypeScript's transpileModule, the per-file emit tsc itself does under isolatedModules. Nothing is type
// checked and no .d.ts is written, so it takes seconds instead of a minute; `pnpm test` type-checks every
// package and `pnpm build` writes the declarations. One line per package reports progress.
//
// Usage: node .ci/transpile.mjs [out-root]   (with out-root, package <name> goes to out-root/<name>/)
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
const outRoot = process.argv[2];

function fail(message) {
  console.error(`transpile: ${message}`);
  process.exit(1);
}

/** The package's build config (tsconfig.build.json) as tsc reads it: options and source files. */
function buildConfig(dir) {
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail(flatten(d)) };
  const parsed = ts.getParsedCommandLineOfConfigFile(join(dir, 'tsconfig.build.json'), {}, host);
  if (parsed.errors.length > 0) fail(parsed.errors.map(flatten).join('\n'));
  return parsed;
}

function flatten(diagnostic) {
  return ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
}

function transpilePackage(dir, outDir) {
  const { options, fileNames } = buildConfig(dir);
  // Every package is "type": "module", so each file is an ES module whatever the module setting says.
  const compilerOptions = {
    ...options,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    declaration: false,
    declarationMap: false,
  };
  for (const file of fileNames) {
    const out = join(outDir ?? options.outDir, relative(options.rootDir, file)).replace(/\.ts$/, '.js');
    const result = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions,
      fileName: file,
      reportDiagnostics: true,
    });
    if (result.diagnostics?.length) fail(`${file}: ${result.diagnostics.map(flatten).join('\n')}`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(
      out,
      result.outputText.replace(/\/\/# sourceMappingURL=.*$/, `//# sourceMappingURL=${basename(out)}.map`),
    );
    if (result.sourceMapText) {
      // transpileModule names the source as given; tsc names it relative to the map, as the map is read.
      const map = JSON.parse(result.sourceMapText);
      map.file = basename(out);
      map.sources = [relative(dirname(out), file)];
      writeFileSync(`${out}.map`, JSON.stringify(map));
    }
  }
  return fileNames.length;
}

for (const name of readdirSync(packagesDir).sort()) {
  const dir = join(packagesDir, name);
  if (!existsSync(join(dir, 'tsconfig.build.json'))) continue;
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const start = performance.now();
  const files = transpilePackage(dir, outRoot && join(outRoot, name));
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(`transpiled ${manifest.name}: ${files} files → dist/ (${seconds} s)`);
}
