// A CPU profile of immich-proxy (built, production defaults, pinned like in bench/run.ts) under
// the small-GET load at 50 connections, and where its self time goes.
//
//   npx tsx bench/profile.ts [--seconds=10] [--connections=50] [--dir=/tmp/prof] [--no-build]
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { summarise, type CpuProfile } from './cpuprofile-summary.js'
import { wrk } from './lib/load.js'
import { prepareSelf } from './lib/processes.js'
import { LOAD_CORE, REPO, immichProxy, startUpstream } from './lib/targets.js'

const flag = (name: string, fallback: string): string => process.argv.find(a => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const seconds = Number(flag('seconds', '10'))
const connections = Number(flag('connections', '50'))
const profileDir = flag('dir', '/tmp/prof')

const maxFiles = prepareSelf(LOAD_CORE)
if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] })
mkdirSync(profileDir, { recursive: true })
const before = new Set(readdirSync(profileDir))

const dir = mkdtempSync(join(tmpdir(), 'immich-profile-'))
const upstream = await startUpstream(join(dir, 'upstream'))
try {
  const target = immichProxy('immich-proxy', false, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`], 'SIGINT')
  const proxy = await target.start({ upstream: upstream.url, dir, certFile: '', keyFile: '', maxFiles })
  try {
    const result = await wrk(`${proxy.url}/small`, connections, seconds)
    console.error(`immich-proxy under wrk -c${connections} -d${seconds}s: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(2)} ms${result.errors > 0 ? `, ${result.errors} errors` : ''}`)
  } finally {
    // SIGINT: close-with-grace closes the servers, node exits and writes the profile
    await proxy.stop()
  }
} finally {
  await upstream.stop()
  rmSync(dir, { recursive: true, force: true })
}
const written = readdirSync(profileDir).filter(name => name.endsWith('.cpuprofile') && !before.has(name))
  .sort((a, b) => statSync(join(profileDir, b)).mtimeMs - statSync(join(profileDir, a)).mtimeMs)
if (written.length === 0) throw new Error(`no new .cpuprofile in ${profileDir}`)
const file = join(profileDir, written[0])
console.error(`profile: ${file}\n`)
process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile))
