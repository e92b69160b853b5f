// npm test: the suite transpiled once, then run as JavaScript by Node's own test runner, with
// coverage from c8.
//
// The test files use tap's assertion library; what runs them is `node --test`, which reads the TAP
// each file prints. tap's own runner cost ~1.7 s of CPU per file before the first assertion: its
// process-tracking loader hooks every module load of every test and of every Node process a test
// starts (CONTRIBUTING.md, "How the tests run"). esbuild transpiles src/, plugins/ and test/ into
// .test-build/ with inline source maps, so coverage and stack traces point at the .ts lines; types
// are checked by `npm run typecheck`.
//
// Several files share one test process (GROUP_SIZE): a process costs ~1 s of CPU to start tap and
// the helpers' imports, which was a third of the suite's CPU with one process per file.
//
// Usage: npm test [-- [--disable-coverage] [--jobs=N] [test/x.test.ts ...]]
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { build } from 'esbuild'

const OUT = '.test-build'
// A file's wall time is mostly waiting (timers, child processes, sockets), so more files than
// cores run at once; 4 keeps the 2-core machines the suite is measured on busy without timing
// tests starving each other.
const JOBS = 4
// Test files per process. Files run one after another in their process, so a larger group is a
// longer pole; 6 was the fastest on two cores (4: a fifth slower; 1: twice the CPU).
const GROUP_SIZE = 6
// A test file whose source says this runs in a process of its own (it counts something
// process-wide from zero, say).
const OWN_PROCESS = 'npm test: own process'
// The thresholds the suite must keep (statements, branches, functions, lines; Node 20).
const COVERAGE = { statements: 90, branches: 88, functions: 82, lines: 90 }

const sources = dir => readdirSync(dir, { withFileTypes: true, recursive: true })
  .filter(entry => entry.isFile() && entry.name.endsWith('.ts'))
  .map(entry => join(entry.parentPath ?? entry.path, entry.name))

const args = process.argv.slice(2)
const coverage = !args.includes('--disable-coverage')
const jobs = Number(args.find(arg => arg.startsWith('--jobs='))?.slice('--jobs='.length) ?? JOBS)
const unknown = args.filter(arg => arg.startsWith('-') && arg !== '--disable-coverage' && !arg.startsWith('--jobs='))
if (unknown.length > 0 || !Number.isInteger(jobs) || jobs < 1) {
  console.error(`npm test: unknown option ${unknown.join(' ') || `--jobs=${jobs}`}; usage: npm test [-- [--disable-coverage] [--jobs=N] [test/x.test.ts ...]]`)
  process.exit(2)
}

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

const named = args.filter(arg => !arg.startsWith('-'))
const sourcesToRun = named.length > 0
  ? named.map(arg => arg.replace(/^\.\//, ''))
  : readdirSync('test').filter(name => name.endsWith('.test.ts')).sort().map(name => join('test', name))
const alone = sourcesToRun.filter(source => readFileSync(source, 'utf8').includes(OWN_PROCESS))
const shared = sourcesToRun.filter(source => !alone.includes(source))
const transpiled = source => join(OUT, source.replace(/\.ts$/, '.js'))

// Each group is a file importing its members in turn; tap runs their tests one after another.
// Members are dealt out in turn (not in name order) so that related slow files (acme-*) spread.
const GROUPS = join(OUT, 'groups')
mkdirSync(GROUPS, { recursive: true })
const groupCount = Math.ceil(shared.length / GROUP_SIZE)
const files = [...alone.map(transpiled)]
for (let group = 0; group < groupCount; group++) {
  const members = shared.filter((_, index) => index % groupCount === group)
  // a short name: tap names its fixture folders after the process's main file and the test
  const file = join(GROUPS, `group-${String(group + 1).padStart(2, '0')}.test.js`)
  // a member that cannot be loaded fails by name, and the others still run
  writeFileSync(file, `import t from 'tap'
for (const [source, member] of ${JSON.stringify(members.map(member => [member, `./${relative(GROUPS, transpiled(member))}`]))}) {
  try { await import(member) } catch (error) { t.fail(\`\${source} could not be loaded: \${error.stack}\`) }
}
`)
  files.push(file)
}

const COVERAGE_DIR = join(OUT, 'coverage')
const runner = [
  process.execPath, '--enable-source-maps', ...(coverage ? ['--import', './scripts/coverage.mjs'] : []),
  '--test', `--test-concurrency=${jobs}`, '--test-timeout=600000', '--test-reporter=spec', ...files
]
const env = {
  ...process.env,
  // tap's own limit per test file (its default is 30 s; a packing test takes longer under load)
  TAP_TIMEOUT: '600',
  // Node >= 22.1 keeps compiled code here, for the test processes and the servers they start
  NODE_COMPILE_CACHE: join(process.cwd(), OUT, 'compile-cache'),
  ...coverage ? { IMMICH_PROXY_COVERAGE_DIR: join(process.cwd(), COVERAGE_DIR) } : {}
}
const run = spawnSync(runner[0], runner.slice(1), { stdio: 'inherit', env })
if (run.error !== undefined) throw run.error
if (run.status !== 0 || !coverage) process.exit(run.status ?? 1)

const report = spawnSync(join('node_modules', '.bin', 'c8'), [
  'report', '--check-coverage', ...Object.entries(COVERAGE).map(([kind, percent]) => `--${kind}=${percent}`),
  '--reporter=text-summary', `--temp-directory=${COVERAGE_DIR}`, '--exclude-after-remap', '--include=src/**', '--include=plugins/**'
], { stdio: 'inherit' })
if (report.error !== undefined) throw report.error
process.exit(report.status ?? 1)
