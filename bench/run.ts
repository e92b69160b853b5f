// `npm run bench`: immich-proxy against what users would run instead, on this
// machine, in one run. Each proxy is pinned to core 0 with one worker; wrk, the other clients
// and the upstream share core 1. Every figure is taken for every target in turn (A B C … A B C
// …), in rounds, and reported as median and spread; the machine changes speed over minutes, so
// only the ratios within one run mean much. Writes bench/RESULTS.md (--quick:
// bench/RESULTS-quick.md). Loopback only; every process it starts is killed when it ends.
//
//   npm run bench                  full run: 3 rounds, 4 GiB transfers, 10 000 WebSockets, ~18 min
//   npm run bench -- --quick       1 round, 2 s per load, 512 MiB, 4 000 WebSockets, under 3 min
//   options: --rounds=N --size=512m --targets=direct,immich-proxy,nginx --no-build --keep
//   --out=bench/RESULTS-x.md (or BENCH_QUICK=1, BENCH_ROUNDS, BENCH_SIZE, BENCH_TARGETS, BENCH_OUT)
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseSize } from '../src/nginx-units.js'
import { download, echoRate, fixedRate, openSockets, upload, wrk } from './lib/load.js'
import { atExit, coreBusyPercent, coreTimes, prepareSelf, resetPeak, sleep, treeCpuSeconds, treePeakRss, treeRss } from './lib/processes.js'
import { formatNumber, formatReport, type Figure, type Samples } from './lib/report.js'
import { LOAD_CORE, REPO, TARGETS, startUpstream, type Context, type Running, type Target } from './lib/targets.js'

interface Options {
  quick: boolean
  rounds: number
  size: number
  targets: string[]
  build: boolean
  keep: boolean
  wrkSeconds: number
  rateSeconds: number
  echoSeconds: number
  sockets: number[]
  out: string
}

function parseOptions (argv: string[], env: NodeJS.ProcessEnv): Options {
  const flag = (name: string): string | undefined => {
    const arg = argv.find(a => a === `--${name}` || a.startsWith(`--${name}=`))
    return arg === undefined ? undefined : arg.split('=')[1] ?? 'true'
  }
  const quick = flag('quick') !== undefined || env.BENCH_QUICK === '1'
  const targets = (flag('targets') ?? env.BENCH_TARGETS)?.split(',') ?? TARGETS.map(t => t.name)
  for (const name of targets) if (!TARGETS.some(t => t.name === name)) throw new Error(`unknown target ${name}; known: ${TARGETS.map(t => t.name).join(', ')}`)
  return {
    quick,
    rounds: Number(flag('rounds') ?? env.BENCH_ROUNDS ?? (quick ? 1 : 3)),
    size: parseSize(flag('size') ?? env.BENCH_SIZE ?? (quick ? '512m' : '4g')),
    targets,
    build: flag('no-build') === undefined,
    keep: flag('keep') !== undefined,
    wrkSeconds: quick ? 2 : 5,
    rateSeconds: quick ? 2 : 5,
    echoSeconds: quick ? 1 : 2,
    sockets: quick ? [1000, 4000] : [1000, 10_000],
    // a run of some targets only can go elsewhere than the last run of them all
    out: resolve(flag('out') ?? env.BENCH_OUT ?? join(REPO, 'bench', quick ? 'RESULTS-quick.md' : 'RESULTS.md'))
  }
}

function run (command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim()
}

function ensureTools (): void {
  const missing = ['nginx', 'haproxy', 'wrk', 'curl'].filter(tool => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: run as root or \`apt-get install -y ${missing.join(' ')}\``)
  console.error(`installing ${missing.join(', ')}…`)
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

function machine (): Record<string, string> {
  const lscpu = run('lscpu', [])
  return {
    cpu: /^Model name:\s+(.*)$/m.exec(lscpu)?.[1] ?? '?',
    cores: run('nproc', ['--all']),
    memory: `${(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 2 ** 20).toFixed(1)} GiB`,
    kernel: run('uname', ['-sr']),
    node: process.version,
    nginx: run('nginx', ['-v']).replace('nginx version: ', ''),
    haproxy: run('haproxy', ['-v']).split('\n')[0].replace(/ - https.*/, ''),
    wrk: run('wrk', ['-v']).split('\n')[0].replace(/ Copyright.*/, ''),
    'immich-proxy': (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version
  }
}

/** MB as 10^6 bytes, kB as 10^3: the units of docs/performance.md. */
const MB = 1e6

async function main (): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env)
  const maxFiles = prepareSelf(LOAD_CORE)
  // a proxy holds two descriptors per WebSocket (client and upstream), plus its own few
  const socketCap = Math.floor((maxFiles - 400) / 2 / 100) * 100
  options.sockets = options.sockets.map(count => Math.min(count, socketCap))
  const cappedNote = options.sockets.includes(socketCap) ? [`WebSockets capped at ${socketCap}: the open-file limit here is ${maxFiles} per process (raising it needs CAP_SYS_RESOURCE) and a proxy holds two per socket`] : []
  ensureTools()
  if (options.build) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] })

  const dir = mkdtempSync(join(tmpdir(), 'immich-bench-'))
  // nginx's workers (user nobody) need their way to their temp paths
  chmodSync(dir, 0o755)
  if (!options.keep) atExit(() => rmSync(dir, { recursive: true, force: true }))
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' })

  const began = Date.now()
  const loadBefore = loadavg()
  const loadAtRounds: number[] = []
  const samples: Samples = new Map()
  const notes: string[] = [...cappedNote]
  const record = (figure: string, target: string, value: number): void => {
    if (!samples.has(figure)) samples.set(figure, new Map())
    const byTarget = samples.get(figure) as Map<string, number[]>
    byTarget.set(target, [...byTarget.get(target) ?? [], value])
  }
  const log = (text: string): void => { console.error(`[${((Date.now() - began) / 1000).toFixed(0).padStart(4)} s] ${text}`) }

  const upstream = await startUpstream(join(dir, 'upstream'))
  const context: Context = { upstream: upstream.url, dir, certFile, keyFile, maxFiles }
  const targets = TARGETS.filter(t => options.targets.includes(t.name))
  const running = new Map<string, Running>()
  try {
    for (const target of targets) running.set(target.name, await target.start(context))
    log(`upstream ${upstream.url}; targets ${targets.map(t => `${t.name} ${running.get(t.name)?.url ?? ''}`).join(', ')}`)

    const upstreamSockets = async (): Promise<number> => {
      const response = await fetch(`${upstream.url}/stats`)
      return (await response.json() as { sockets: number }).sockets
    }
    // Waits until the upstream holds `count` sockets; false after 10 s (a proxy that leaks).
    const waitForUpstreamSockets = async (count: number): Promise<boolean> => {
      for (let i = 0; i < 100; i++) {
        if (await upstreamSockets() === count) return true
        await sleep(100)
      }
      return false
    }

    // One figure for one target; a failure is noted and the run goes on.
    const attempt = async (what: string, target: Target, measure: () => Promise<void>): Promise<void> => {
      try {
        await measure()
      } catch (error) {
        const message = `${what}, ${target.name}: ${(error as Error).message}`
        notes.push(message.split('\n')[0])
        log(`FAILED ${message}`)
      }
    }

    // JIT, connection pools and caches warm before anything counts
    for (const target of targets) await wrk(`${(running.get(target.name) as Running).url}/small`, 50, 1).catch(() => {})

    const plain = targets.filter(t => !t.tls)
    const proxies = plain.filter(t => t.name !== 'direct')

    for (let round = 1; round <= options.rounds; round++) {
      loadAtRounds.push(loadavg()[0])
      log(`round ${round} of ${options.rounds}, load average ${loadavg()[0].toFixed(2)}`)

      for (const connections of [50, 200, 500]) {
        for (const target of targets) {
          await attempt(`small GET ${connections}`, target, async () => {
            const run = running.get(target.name) as Running
            const cpuBefore = run.pid === undefined ? 0 : treeCpuSeconds(run.pid)
            const upstreamBefore = treeCpuSeconds(upstream.pid)
            const coresBefore = coreTimes()
            const result = await wrk(`${run.url}/small`, connections, options.wrkSeconds)
            const busy = coreBusyPercent(coresBefore, coreTimes())
            record(`get${connections}.rps`, target.name, result.rps)
            record(`get${connections}.p99`, target.name, result.p99)
            if (run.pid !== undefined) record(`get${connections}.cpu`, target.name, 100 * (treeCpuSeconds(run.pid) - cpuBefore) / options.wrkSeconds)
            record(`get${connections}.upstreamCpu`, target.name, 100 * (treeCpuSeconds(upstream.pid) - upstreamBefore) / options.wrkSeconds)
            record(`get${connections}.core0`, target.name, busy[0])
            record(`get${connections}.core1`, target.name, busy[1])
            if (result.errors > 0) notes.push(`small GET ${connections}, ${target.name}, round ${round}: ${result.errors} errors or non-2xx of ${result.requests}`)
            log(`GET c${connections} ${target.name}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(2)} ms, core0 ${busy[0].toFixed(0)}% core1 ${busy[1].toFixed(0)}%${result.errors > 0 ? `, ${result.errors} errors` : ''}`)
          })
        }
      }

      // direct goes first: each proxy's added latency is over direct's in the same round
      let directRate: Awaited<ReturnType<typeof fixedRate>> | undefined
      for (const target of plain) {
        await attempt('fixed rate', target, async () => {
          const result = await fixedRate(`${(running.get(target.name) as Running).url}/small`, 2000, options.rateSeconds)
          record('rate.p50', target.name, result.p50)
          record('rate.p99', target.name, result.p99)
          if (target.name === 'direct') directRate = result
          else if (directRate !== undefined) {
            record('rate.addedp50', target.name, result.p50 - directRate.p50)
            record('rate.addedp99', target.name, result.p99 - directRate.p99)
          }
          if (result.errors > 0) notes.push(`2000 req/s, ${target.name}, round ${round}: ${result.errors} errors`)
          if (result.achieved < 1900) notes.push(`2000 req/s, ${target.name}, round ${round}: the client only sent ${result.achieved.toFixed(0)}/s`)
          log(`2000 req/s ${target.name}: p50 ${result.p50.toFixed(3)} ms, p99 ${result.p99.toFixed(3)} ms`)
        })
      }

      for (const sockets of [1, 50]) {
        for (const target of plain) {
          await attempt(`echo ${sockets}`, target, async () => {
            const rate = await echoRate((running.get(target.name) as Running).url, sockets, options.echoSeconds)
            record(`echo${sockets}`, target.name, rate)
            log(`echo ${sockets} socket(s) ${target.name}: ${rate.toFixed(0)} round trips/s`)
          })
        }
      }

      // a fresh process: start-up and idle memory; another, set for many connections: memory per idle WebSocket
      for (const target of proxies) {
        await attempt('start-up', target, async () => {
          const fresh = await target.start(context)
          try {
            record('startMs', target.name, fresh.startMs)
            await sleep(1000)
            record('idleRss', target.name, treeRss(fresh.pid as number) / MB)
            log(`fresh ${target.name}: answers ${fresh.startMs.toFixed(0)} ms after spawn, idle RSS ${(treeRss(fresh.pid as number) / MB).toFixed(1)} MB`)
          } finally {
            await fresh.stop()
          }
        })
        await attempt('idle WebSockets', target, async () => {
          const fresh = await target.start({ ...context, manyConnections: true })
          const pid = fresh.pid as number
          const sockets: Awaited<ReturnType<typeof openSockets>> = []
          try {
            await sleep(500)
            // first use of the upgrade path allocates code and buffers once; not per socket
            const before = await upstreamSockets()
            for (const ws of await openSockets(fresh.url, 20)) ws.terminate()
            if (!await waitForUpstreamSockets(before)) notes.push(`${target.name}, round ${round}: ${await upstreamSockets() - before} of 20 upstream WebSockets still open 10 s after their clients went away`)
            await sleep(500)
            const baseSockets = await upstreamSockets()
            const base = treeRss(pid)
            const line: string[] = []
            for (const count of options.sockets) {
              sockets.push(...await openSockets(fresh.url, count - sockets.length))
              if (!await waitForUpstreamSockets(baseSockets + count)) throw new Error(`${count} sockets open, the upstream holds ${await upstreamSockets() - baseSockets}`)
              await sleep(1000)
              const perSocket = (treeRss(pid) - base) / count / 1000
              record(`ws${count}`, target.name, perSocket)
              line.push(`${count}: ${perSocket.toFixed(1)} kB`)
            }
            log(`idle WebSockets ${target.name}: RSS per socket ${line.join(', ')}`)
          } finally {
            for (const ws of sockets) ws.terminate()
            await fresh.stop()
            await waitForUpstreamSockets(0)
          }
        })
      }

      // keep-alive to the upstream changes nothing for one long transfer: nginx-keepalive skips it
      for (const direction of ['upload', 'download'] as const) {
        for (const target of targets.filter(t => t.name !== 'nginx-keepalive')) {
          await attempt(direction, target, async () => {
            const run = running.get(target.name) as Running
            if (run.pid !== undefined) resetPeak(run.pid)
            const rate = await (direction === 'upload' ? upload : download)(run.url, options.size, { caFile: certFile })
            record(`${direction}.mbps`, target.name, rate)
            if (run.pid !== undefined) record(`${direction}.peak`, target.name, treePeakRss(run.pid) / MB)
            log(`${direction} ${target.name}: ${rate.toFixed(0)} MB/s${run.pid === undefined ? '' : `, peak RSS ${(treePeakRss(run.pid) / MB).toFixed(1)} MB`}`)
          })
        }
      }
    }
  } finally {
    for (const run of running.values()) await run.stop()
    await upstream.stop()
  }

  const report = formatReport({
    figures: figures(options.sockets),
    samples,
    targets: targets.map(t => t.name),
    notes,
    machine: machine(),
    run: {
      date: new Date(began).toISOString(),
      mode: options.quick ? 'quick' : 'full',
      rounds: String(options.rounds),
      duration: `${((Date.now() - began) / 60_000).toFixed(1)} min`,
      'transfer size': `${(options.size / 2 ** 30).toFixed(options.size < 2 ** 30 ? 2 : 0)} GiB`,
      'load average (1 min): before, at each round, after': [loadBefore[0], ...loadAtRounds, loadavg()[0]].map(l => l.toFixed(2)).join(', ')
    }
  })
  writeFileSync(options.out, report)
  process.stdout.write(report)
  console.error(`\nwritten to ${options.out}`)
}

const figures = (sockets: number[]): Figure[] => [
  { key: 'get50.rps', label: 'small GET, 50 connections: req/s', unit: '', higherIsBetter: true },
  { key: 'get50.p99', label: 'small GET, 50 connections: p99 ms', unit: 'ms', higherIsBetter: false },
  { key: 'get200.rps', label: 'small GET, 200 connections: req/s', unit: '', higherIsBetter: true },
  { key: 'get200.p99', label: 'small GET, 200 connections: p99 ms', unit: 'ms', higherIsBetter: false },
  { key: 'get500.rps', label: 'small GET, 500 connections: req/s', unit: '', higherIsBetter: true },
  { key: 'get500.p99', label: 'small GET, 500 connections: p99 ms', unit: 'ms', higherIsBetter: false },
  { key: 'rate.addedp50', label: 'at 2 000 req/s: added p50 ms (direct: its own p50)', unit: 'ms', higherIsBetter: false, direct: 'rate.p50' },
  { key: 'rate.addedp99', label: 'at 2 000 req/s: added p99 ms (direct: its own p99)', unit: 'ms', higherIsBetter: false, direct: 'rate.p99' },
  { key: 'upload.mbps', label: 'upload MB/s', unit: '', higherIsBetter: true },
  { key: 'upload.peak', label: 'upload: proxy peak RSS MB', unit: 'MB', higherIsBetter: false },
  { key: 'download.mbps', label: 'download MB/s', unit: '', higherIsBetter: true },
  { key: 'download.peak', label: 'download: proxy peak RSS MB', unit: 'MB', higherIsBetter: false },
  ...sockets.map(count => ({ key: `ws${count}`, label: `RSS per idle WebSocket, ${formatNumber(count)} open: kB`, unit: 'kB', higherIsBetter: false })),
  { key: 'echo1', label: 'WebSocket echo, 1 socket: round trips/s', unit: '', higherIsBetter: true },
  { key: 'echo50', label: 'WebSocket echo, 50 sockets: round trips/s', unit: '', higherIsBetter: true },
  { key: 'startMs', label: 'start-up to first proxied answer: ms', unit: 'ms', higherIsBetter: false },
  { key: 'idleRss', label: 'idle RSS after start-up: MB', unit: 'MB', higherIsBetter: false },
  { key: 'get50.cpu', label: 'diagnostic: proxy CPU % during small GET 50', unit: '%', higherIsBetter: false, diagnostic: true },
  { key: 'get50.upstreamCpu', label: 'diagnostic: upstream CPU % during small GET 50', unit: '%', higherIsBetter: false, diagnostic: true },
  { key: 'get50.core0', label: 'diagnostic: proxy core busy % (all processes) during small GET 50', unit: '%', higherIsBetter: false, diagnostic: true },
  { key: 'get50.core1', label: 'diagnostic: load core busy % (all processes) during small GET 50', unit: '%', higherIsBetter: false, diagnostic: true },
  { key: 'get500.cpu', label: 'diagnostic: proxy CPU % during small GET 500', unit: '%', higherIsBetter: false, diagnostic: true },
  { key: 'get500.core1', label: 'diagnostic: load core busy % (all processes) during small GET 500', unit: '%', higherIsBetter: false, diagnostic: true }
]

await main()
