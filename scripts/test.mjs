// npm test: the suite transpiled once, then run by tap as JavaScript.
//
// tap's TypeScript plugin loads ts-node and TypeScript into every test process and compiles each
// test's whole import graph there: ~0.8 s of loading and ~1.5 s of CPU per file, most of the
// suite's time (CONTRIBUTING.md, "How the tests run"). esbuild transpiles src/, plugins/ and test/
// into .test-build/ in a fraction of a second instead, with source maps, so coverage and stack
// traces still point at the .ts lines. Types are checked by `npm run typecheck`, as before.
//
// Arguments go to tap; a test named by its source (test/x.test.ts) runs from its transpiled file.
import { spawnSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'

const OUT = '.test-build'
const sources = dir => readdirSync(dir, { withFileTypes: true, recursive: true })
  .filter(entry => entry.isFile() && entry.name.endsWith('.ts'))
  .map(entry => join(entry.parentPath ?? entry.path, entry.name))

rmSync(OUT, { recursive: true, force: true })
await build({
  entryPoints: ['src', 'plugins', 'test'].flatMap(sources),
  outdir: OUT,
  outbase: '.',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning'
})

const args = process.argv.slice(2).map(arg => /^(\.\/)?test\/.+\.ts$/.test(arg) ? join(OUT, arg.replace(/^\.\//, '').replace(/\.ts$/, '.js')) : arg)
const tap = spawnSync(join('node_modules', '.bin', 'tap'), args, { stdio: 'inherit' })
if (tap.error !== undefined) throw tap.error
process.exit(tap.status ?? 1)
