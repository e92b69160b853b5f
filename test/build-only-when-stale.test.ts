// `npm start` builds only when an input of the build is newer than the last build
// (scripts/build-if-stale.mjs, prestart), and `npm pack` builds first (prepack), so a package
// made from a fresh clone carries the server, not just package.json and the README.
import t from 'tap'
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './helpers/ops.js'

async function run (command: string, args: string[], cwd: string): Promise<{ stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) resolve({ stdout, stderr })
      else reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`))
    })
  })
}

/**
 * Sets `file`'s mtime past the bundle's, as an edit after the build would, but not ahead of the
 * clock (a file from the future would stay newer than the next build too).
 */
function touchAfterBuild (dir: string, file: string): void {
  const later = new Date(Math.max(Date.now(), Math.ceil(statSync(join(dir, 'dist/immich-proxy.cjs')).mtimeMs) + 1))
  utimesSync(join(dir, file), later, later)
}

t.test('prestart builds when a source, the lock file or a tsconfig is newer than the bundle, and only then', async t => {
  // the real script in a tree whose "build" only records that it ran, so the decision is
  // tested without paying for tsc and esbuild
  const dir = t.testdir({
    'package.json': JSON.stringify({ name: 'stale-check', private: true, scripts: { build: 'node fake-build.mjs' } }),
    'fake-build.mjs': [
      "import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'",
      "mkdirSync('dist/src', { recursive: true })",
      "writeFileSync('dist/src/index.js', '')",
      "writeFileSync('dist/immich-proxy.cjs', '')",
      "appendFileSync('builds.log', 'built\\n')"
    ].join('\n'),
    'package-lock.json': '{}',
    'tsconfig.json': '{}',
    'tsconfig.build.json': '{}',
    'README.md': '',
    src: { 'server.ts': '' },
    plugins: { lib: { 'forward.ts': '' } },
    test: { 'a.test.ts': '' },
    scripts: {}
  })
  copyFileSync(join(root, 'scripts/build-if-stale.mjs'), join(dir, 'scripts/build-if-stale.mjs'))
  const builds = (): number => {
    try {
      return readFileSync(join(dir, 'builds.log'), 'utf8').split('\n').filter(Boolean).length
    } catch {
      return 0
    }
  }
  const prestart = async (): Promise<string> => (await run(process.execPath, ['scripts/build-if-stale.mjs'], dir)).stderr

  t.match(await prestart(), /building .*dist\/immich-proxy\.cjs/, 'no bundle yet: builds')
  t.equal(builds(), 1)
  t.match(await prestart(), /build up to date/, 'nothing changed: no build')
  t.equal(builds(), 1)

  for (const input of ['src/server.ts', 'package-lock.json', 'tsconfig.build.json']) {
    touchAfterBuild(dir, input)
    t.match(await prestart(), new RegExp(`building .*${input.replace(/\./g, '\\.')}`), `${input} touched: builds, naming it`)
    const count = builds()
    t.match(await prestart(), /build up to date/, 'then no build again')
    t.equal(builds(), count)
  }

  touchAfterBuild(dir, 'test/a.test.ts')
  touchAfterBuild(dir, 'README.md')
  t.match(await prestart(), /build up to date/, 'a test or the README touched: no build')
})

t.test('npm pack on an unbuilt clone builds first and ships the server', async t => {
  // a clone's tracked build inputs, with no dist/, sharing this checkout's installed packages
  const dir = t.testdir()
  for (const entry of ['src', 'plugins', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md']) {
    cpSync(join(root, entry), join(dir, entry), { recursive: true })
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  mkdirSync(join(dir, 'test'))
  writeFileSync(join(dir, 'test/unused.ts'), '')

  const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], dir)
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>
  const files = pack.files.map(file => file.path)
  for (const file of ['dist/immich-proxy.cjs', 'dist/src/index.js', 'dist/src/index.d.ts', 'package.json', 'README.md']) {
    t.ok(files.includes(file), `ships ${file}`)
  }
  t.notOk(files.some(file => file.startsWith('test/') || file.startsWith('src/')), 'no tests or TypeScript sources')
  t.match((await run(process.execPath, ['scripts/build-if-stale.mjs'], dir)).stderr, /build up to date/, 'and npm start after it does not build again')
})
