// `npx tsx bench/gate-cost.ts [--rounds=5] [--seconds=5] [--connections=50]`: what the access
// gate costs a request that passes on an Immich API key (its verdict remembered) against one
// that passes on the access key, in one run. One proxy process (the bundle, ACCESS_KEY set) on
// core 0, the stand-in Immich and wrk on core 1; small GETs; the two kinds alternate round by
// round so that drift hits both. Prints each round and the median ratio. Needs wrk (apt-get
// install wrk) and a built bundle (npm run build).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { wrk } from './lib/load.js'
import { atExit, freePort, startProcess, stopProcess, waitForAnswer } from './lib/processes.js'
import { PROXY_CORE, startUpstream } from './lib/targets.js'
import { START_ENTRY, START_FLAGS } from '../test/helpers/start-flags.js'
import { root } from '../test/helpers/root.js'

const option = (name: string, fallback: number): number => Number(process.argv.find(arg => arg.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const ROUNDS = option('rounds', 5)
const SECONDS = option('seconds', 5)
const CONNECTIONS = option('connections', 50)
const ACCESS_KEY = 'bench-access-key-0123456789'
const API_KEY = 'bench-api-key-0123456789abcdef'

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'immich-gate-bench-'))
  atExit(() => rmSync(dir, { recursive: true, force: true }))
  const upstream = await startUpstream(join(dir, 'upstream'))
  const port = await freePort()
  const adminPort = await freePort()
  const proxy = startProcess(process.execPath, [...START_FLAGS, START_ENTRY], {
    core: PROXY_CORE,
    cwd: root,
    env: { UPSTREAM_URL: upstream.url, HOST: '127.0.0.1', PORT: String(port), ADMIN_PORT: String(adminPort), ACCESS_KEY, LOG_LEVEL: 'warn' },
    logFile: join(dir, 'proxy.log')
  })
  const url = `http://127.0.0.1:${port}/small`
  const kinds = { 'access key': { 'x-access-key': ACCESS_KEY }, 'API key': { 'x-api-key': API_KEY } }
  try {
    await waitForAnswer(`http://127.0.0.1:${adminPort}/livez`, performance.now(), proxy)
    // warm-up, which also leaves the API key's verdict remembered
    for (const headers of Object.values(kinds)) await wrk(url, CONNECTIONS, 2, headers)
    const rates: Record<string, number[]> = { 'access key': [], 'API key': [] }
    const ratios: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? ['access key', 'API key'] as const : ['API key', 'access key'] as const
      for (const kind of order) {
        const result = await wrk(url, CONNECTIONS, SECONDS, kinds[kind])
        if (result.errors > 0) throw new Error(`${kind}: ${result.errors} errors (non-2xx or socket errors) in round ${round}`)
        rates[kind].push(result.rps)
      }
      ratios.push(rates['API key'][round - 1] / rates['access key'][round - 1])
      console.error(`round ${round}: access key ${rates['access key'][round - 1].toFixed(0)} req/s, API key ${rates['API key'][round - 1].toFixed(0)} req/s`)
    }
    const ratio = median(ratios)
    console.log(`| small GET, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s | access key | API key (remembered) | API key ÷ access key |`)
    console.log('|---|---:|---:|---:|')
    console.log(`| median req/s | ${median(rates['access key']).toFixed(0)} | ${median(rates['API key']).toFixed(0)} | ${ratio.toFixed(3)} (${Math.min(...ratios).toFixed(3)}…${Math.max(...ratios).toFixed(3)}) |`)
  } finally {
    await stopProcess(proxy)
    await upstream.stop()
  }
}

await main()
