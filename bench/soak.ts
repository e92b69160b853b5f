// `npm run soak`: the floods one hostile or broken client can send, one after another, against
// one proxy process (the bundle, HTTPS with HTTP/2, under `ulimit -n 512`) on 127.0.0.1:
// pipelined fan-out, an HTTP/2 stream flood, rapid reset, idle connections past the fd limit and
// 1 000 aborted uploads. After each: the process is alive, a normal request gets 200, and its
// descriptor count comes back within 10 % of the baseline (waited for, with a bound), and its RSS
// after the last flood is within 10 % of the RSS before the first.
// Prints a table; exits 1 if a check failed. Not part of `npm test`: it takes one to three minutes.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect as http2Connect, constants } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { serverCommand } from '../test/helpers/ops.js'
import { freePort, sleep } from './lib/processes.js'

const FD_LIMIT = 512
const SETTLE_MS = 20_000
const TOTAL_MS = 300_000

function fds (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

function rss (pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? 0 : Number(match[1]) * 1024
}

interface Row {
  flood: string
  figures: string
  alive: boolean
  status: number
  fds: [number, number, number]
  rssMb: [number, number, number]
  settledMs: number
  settled: boolean
  fdsBack: boolean
}

const mb = (bytes: number): number => Math.round(bytes / 1048576 * 10) / 10

async function main (): Promise<number> {
  let upstreamConnections = 0
  const upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.url?.startsWith('/slow') === true) setTimeout(() => res.end('ok'), 200)
      else res.end('{"res":"pong"}')
    })
    req.on('error', () => {})
  })
  upstream.on('connection', () => { upstreamConnections++ })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

  const port = await freePort()
  const adminPort = await freePort()
  const [node, ...args] = await serverCommand()
  const child: ChildProcess = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, node, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      UPSTREAM_URL: upstreamUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      TLS_SELF_SIGNED: 'true',
      UPSTREAM_MAX_CONNECTIONS: '200',
      LOG_LEVEL: 'warn'
    },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const kill = (): void => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  process.once('exit', kill)
  const deadline = setTimeout(() => {
    process.stderr.write(`soak: still running after ${TOTAL_MS} ms; stopping\n`)
    kill()
    process.exit(1)
  }, TOTAL_MS).unref()
  const pid = child.pid as number
  const alive = (): boolean => child.exitCode === null && child.signalCode === null
  const base = `https://127.0.0.1:${port}`

  async function normalRequest (): Promise<number> {
    const session = http2Connect(base, { rejectUnauthorized: false })
    session.on('error', () => {})
    try {
      const stream = session.request({ ':path': '/api/server/ping' })
      stream.on('error', () => {})
      const answer = once(stream, 'response') as Promise<[Record<string, string>]>
      const timeout = sleep(5000).then(() => { throw new Error('no answer in 5 s') })
      const [headers] = await Promise.race([answer, timeout])
      stream.resume()
      return Number(headers[':status'])
    } catch {
      return 0
    } finally {
      session.destroy()
    }
  }

  // listening: the first 200
  for (let tries = 0; ; tries++) {
    if (await normalRequest() === 200) break
    if (!alive() || tries > 150) throw new Error('the proxy did not start')
    await sleep(200)
  }
  for (let i = 0; i < 20; i++) await normalRequest()
  // A warm-up round of every flood first: the first time, V8 grows its heap and keeps it (RSS
  // +20-80 MB here); what must not happen is growth that stays from one round to the next.
  let baseline = { fds: 0, rss: 0 }
  let rows: Row[] = []
  const floods: Array<[string, () => Promise<string>]> = []
  async function flood (name: string, run: () => Promise<string>, settleMs: number): Promise<void> {
    // where the process stood before this flood (the previous one settled, or the idle start)
    baseline = { fds: fds(pid), rss: rss(pid) }
    let peakFds = fds(pid)
    let peakRss = rss(pid)
    const sampler = setInterval(() => {
      if (!alive()) return
      peakFds = Math.max(peakFds, fds(pid))
      peakRss = Math.max(peakRss, rss(pid))
    }, 50)
    const figures = await run()
    clearInterval(sampler)
    const status = alive() ? await normalRequest() : 0
    const started = Date.now()
    let fdsBack = false
    let settled = false
    while (alive() && Date.now() - started < settleMs) {
      fdsBack = fds(pid) <= baseline.fds * 1.1
      if (fdsBack && rss(pid) <= baseline.rss * 1.1) {
        settled = true
        break
      }
      await sleep(250)
    }
    const now = alive() ? { fds: fds(pid), rss: rss(pid) } : { fds: 0, rss: 0 }
    rows.push({
      flood: name,
      figures,
      alive: alive(),
      status,
      fds: [baseline.fds, peakFds, now.fds],
      rssMb: [mb(baseline.rss), mb(peakRss), mb(now.rss)],
      settledMs: Date.now() - started,
      settled,
      fdsBack
    })
  }

  floods.push(['pipelined fan-out', async () => {
    const before = upstreamConnections
    const sockets = await Promise.all([0, 1, 2].map(async () => {
      const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      socket.on('error', () => {})
      await once(socket, 'secureConnect')
      return socket
    }))
    let answers = 0
    const done = sockets.map(async socket => {
      let mine = 0
      let text = ''
      socket.setEncoding('latin1').on('data', (chunk: string) => {
        // counted by the body each answer ends with, kept across reads
        text += chunk
        const parts = text.split('{"res":"pong"}')
        mine += parts.length - 1
        answers += parts.length - 1
        text = parts[parts.length - 1].slice(-20)
      })
      socket.write('GET /api/server/ping HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(1000))
      const started = Date.now()
      const finished = (): boolean => mine >= 1000 || socket.destroyed || Date.now() - started > 20_000
      while (!finished()) await sleep(50)
    })
    await Promise.all(done)
    for (const socket of sockets) socket.destroy()
    return `3 connections x 1000 pipelined: ${answers} answered, ${upstreamConnections - before} upstream connections`
  }])

  floods.push(['HTTP/2 stream flood', async () => {
    const before = upstreamConnections
    let ok = 0
    await Promise.all([0, 1, 2, 3, 4].map(async () => {
      const session = http2Connect(base, { rejectUnauthorized: false, peerMaxConcurrentStreams: 1000 })
      session.on('error', () => {})
      await once(session, 'remoteSettings')
      await Promise.all(Array.from({ length: 500 }, async (_, i) => {
        const stream = session.request({ ':path': `/slow/${i}` })
        stream.on('error', () => {})
        stream.on('response', headers => { if (headers[':status'] === 200) ok++ })
        await Promise.race([once(stream.resume(), 'close'), sleep(30_000)])
      }))
      session.destroy()
    }))
    return `5 sessions x 500 streams: ${ok} answered 200, ${upstreamConnections - before} upstream connections`
  }])

  floods.push(['rapid reset', async () => {
    const codes: string[] = []
    let opened = 0
    await Promise.all([0, 1, 2].map(async () => {
      const session = http2Connect(base, { rejectUnauthorized: false, peerMaxConcurrentStreams: 100_000 })
      session.on('error', () => {})
      let goaway: number | undefined
      session.on('goaway', (code: number) => { goaway ??= code })
      const calmed = (): boolean => goaway !== undefined || session.destroyed
      await once(session, 'remoteSettings')
      for (let batch = 0; batch < 100 && !calmed(); batch++) {
        for (let i = 0; i < 200 && !session.destroyed && !session.closed; i++) {
          const stream = session.request({ ':path': '/slow' })
          stream.on('error', () => {})
          stream.close(constants.NGHTTP2_CANCEL)
          opened++
        }
        await new Promise(resolve => setImmediate(resolve))
      }
      await sleep(500)
      codes.push(goaway === constants.NGHTTP2_ENHANCE_YOUR_CALM ? 'ENHANCE_YOUR_CALM' : String(goaway ?? 'none'))
      session.destroy()
    }))
    return `3 sessions, ${opened} streams requested and reset; GOAWAY: ${codes.join(', ')}`
  }])

  floods.push(['idle connections', async () => {
    const sockets: Socket[] = []
    let closed = 0
    for (let i = 0; i < FD_LIMIT + 300; i++) {
      const socket = netConnect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.on('close', () => { closed++ })
      sockets.push(socket)
    }
    await sleep(3000)
    for (const socket of sockets) socket.destroy()
    return `${sockets.length} idle connections held 3 s: ${closed} closed by the proxy`
  }])

  floods.push(['aborted uploads', async () => {
    let aborted = 0
    const one = async (): Promise<void> => {
      const req = httpsRequest(`${base}/api/assets`, {
        method: 'POST',
        agent: false,
        rejectUnauthorized: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': 1048576 }
      })
      req.on('error', () => {})
      req.write(Buffer.alloc(65536, 'u'))
      await sleep(20)
      req.destroy()
      aborted++
    }
    for (let batch = 0; batch < 20; batch++) await Promise.all(Array.from({ length: 50 }, one))
    return `${aborted} uploads of 1 MiB cut after 64 KiB`
  }])

  // V8 gives memory back at its next major collection, which an idle process may not run for a
  // while: RSS that stays up after one flood is garbage if the next flood's collection brings it
  // down. What must not happen is growth that stays: the RSS after the last flood is checked
  // against the one before the first.
  let roundStart = 0
  for (const round of ['warm-up', 'measured']) {
    await sleep(6000) // idle upstream connections close (undici keeps them 4 s)
    rows = []
    roundStart = rss(pid)
    for (const [name, run] of floods) await flood(name, run, round === 'warm-up' ? 3000 : SETTLE_MS)
    if (round === 'warm-up') process.stdout.write(`warm-up round: ${rows.map(row => `${row.flood} ${row.alive && row.status === 200 ? 'ok' : 'FAILED'}`).join(', ')}\n`)
  }

  const lines = [
    '| flood | what happened | alive | normal request | fds base / peak / after | RSS MB base / peak / after | fds and RSS back within 10 % |',
    '|---|---|---|---|---|---|---|'
  ]
  for (const row of rows) {
    lines.push(`| ${row.flood} | ${row.figures} | ${row.alive ? 'yes' : 'NO'} | ${row.status} | ${row.fds.join(' / ')} | ${row.rssMb.join(' / ')} | ${row.settled ? `yes, ${row.settledMs} ms` : `NO after ${row.settledMs} ms`} |`)
  }
  const roundEnd = alive() ? rss(pid) : Infinity
  const grewAndStayed = roundEnd > roundStart * 1.1
  process.stdout.write(`fd limit ${FD_LIMIT}, Node ${process.version}\n${lines.join('\n')}\n`)
  process.stdout.write(`RSS before the first flood ${mb(roundStart)} MB, after the last ${mb(roundEnd)} MB: ${grewAndStayed ? 'GREW by more than 10 %' : 'within 10 %'}\n`)
  clearTimeout(deadline)
  kill()
  upstream.closeAllConnections()
  upstream.close()
  return rows.every(row => row.alive && row.status === 200 && row.fdsBack) && !grewAndStayed ? 0 : 1
}

main().then(code => { process.exitCode = code }, (error: unknown) => {
  process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`)
  process.exitCode = 1
})
