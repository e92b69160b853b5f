// `npm run soak`: the floods a hostile client or a flaky network sends, one after another,
// against one proxy process run as `npm start` runs it, under a lowered file-descriptor limit.
// After each flood: the process is alive, a normal request gets 200, and its open descriptors
// and resident memory come back to within 10 % of the figures before the floods. Loopback only,
// bounded in count and time; exits 1 naming what failed. Not part of `npm test` (about a minute).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect as h2connect, constants as h2 } from 'node:http2'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { serverCommand, root } from '../test/helpers/ops.js'
import { closedPort } from '../test/helpers/websocket.js'

const FD_LIMIT = Number(process.env.SOAK_FD_LIMIT ?? 1024)
const TOLERANCE = 0.10

interface Figures { fds: number, rssMb: number }

// ---- the stand-in for Immich: counts the connections the proxy opens to it ----------------
let upstreamOpen = 0
let upstreamPeak = 0
const upstream = createServer((req, res) => {
  if (req.method === 'POST') {
    req.resume()
    req.on('end', () => res.end('{"id":"asset"}'))
    return
  }
  res.setHeader('content-type', 'application/json')
  res.end('{"res":"pong"}')
})
upstream.on('connection', socket => {
  upstreamPeak = Math.max(upstreamPeak, ++upstreamOpen)
  socket.once('close', () => upstreamOpen--)
})
upstream.keepAliveTimeout = 5_000
await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

// ---- the proxy, as `npm start` runs it, with `ulimit -n FD_LIMIT` ---------------------------
const port = await closedPort()
const adminPort = await closedPort()
const command = await serverCommand()
const quoted = command.map(word => `'${word.replace(/'/g, "'\\''")}'`).join(' ')
const child = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} && exec ${quoted}`], {
  cwd: root,
  env: {
    PATH: process.env.PATH ?? '',
    UPSTREAM_URL: upstreamUrl,
    HOST: '127.0.0.1',
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    TLS_SELF_SIGNED: 'true',
    LOG_LEVEL: 'warn'
  },
  stdio: ['ignore', 'pipe', 'pipe']
})
let output = ''
child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
let exitedWith: string | undefined
child.once('exit', (code, signal) => { exitedWith = `code ${String(code)}, signal ${String(signal)}` })

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const origin = `https://127.0.0.1:${port}`

/** Status of one GET on a fresh HTTPS connection, or the error's code. */
async function normalRequest (): Promise<number | string> {
  return await new Promise(resolve => {
    const req = httpsRequest(`${origin}/api/server/ping`, { rejectUnauthorized: false, agent: false, timeout: 10_000 }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error('ETIMEDOUT')))
    req.on('error', error => resolve((error as NodeJS.ErrnoException).code ?? error.message))
    req.end()
  })
}

function figures (): Figures {
  const pid = child.pid as number
  const fds = readdirSync(`/proc/${pid}/fd`).length
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return { fds, rssMb: Number(rss?.[1] ?? 0) / 1024 }
}

const deadline = Date.now() + 5 * 60_000
for (;;) {
  if (exitedWith !== undefined) throw new Error(`the proxy exited before listening (${exitedWith}):\n${output}`)
  if (await normalRequest() === 200) break
  if (Date.now() > deadline) throw new Error(`the proxy did not answer:\n${output}`)
  await sleep(100)
}
// warm-up: the first requests load code and grow the heap; the baseline is taken after them
for (let i = 0; i < 200; i++) await normalRequest()
await sleep(1000)
const baseline = figures()

// ---- the floods ------------------------------------------------------------------------------

/** `sockets` connections, each sending `perSocket` pipelined GETs at once over TLS (HTTP/1.1). */
async function pipelinedFanOut (sockets: number, perSocket: number): Promise<string> {
  upstreamPeak = upstreamOpen
  const one = async (): Promise<number> => await new Promise(resolve => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write('GET /api/server/ping HTTP/1.1\r\nHost: soak\r\n\r\n'.repeat(perSocket))
    })
    let answers = 0
    socket.setEncoding('latin1')
    socket.on('data', (text: string) => {
      answers += text.split('HTTP/1.1 200').length - 1
      if (answers >= perSocket) socket.end()
    })
    socket.setTimeout(30_000, () => socket.destroy())
    socket.on('error', () => {})
    socket.on('close', () => resolve(answers))
  })
  const answered = await Promise.all(Array.from({ length: sockets }, one))
  return `${answered.reduce((a, b) => a + b, 0)}/${sockets * perSocket} answered, upstream connections peak ${upstreamPeak}`
}

/** One HTTP/2 connection asking for `streams` GETs at once. */
async function h2StreamFlood (streams: number): Promise<string> {
  upstreamPeak = upstreamOpen
  const session = h2connect(origin, { rejectUnauthorized: false })
  session.on('error', () => {})
  let ok = 0
  let refused = 0
  await Promise.all(Array.from({ length: streams }, async () => await new Promise<void>(resolve => {
    let stream
    try {
      stream = session.request({ ':path': '/api/server/ping' })
    } catch {
      refused++
      resolve()
      return
    }
    stream.on('response', headers => { if (headers[':status'] === 200) ok++ })
    stream.on('error', () => { refused++ })
    stream.on('close', () => resolve())
    stream.resume()
    stream.end()
  })))
  session.destroy()
  return `${ok} answered 200, ${refused} refused or reset, upstream connections peak ${upstreamPeak}`
}

/** Streams opened and reset at once (CVE-2023-44487), for `ms`, on successive connections. */
async function h2RapidReset (ms: number): Promise<string> {
  const end = Date.now() + ms
  let opened = 0
  let goaways = 0
  while (Date.now() < end) {
    const session = h2connect(origin, { rejectUnauthorized: false })
    session.on('error', () => {})
    session.on('goaway', code => { if (code === h2.NGHTTP2_ENHANCE_YOUR_CALM) goaways++ })
    await once(session, 'connect').catch(() => {})
    while (!session.closed && !session.destroyed && Date.now() < end) {
      for (let i = 0; i < 100 && !session.destroyed && !session.closed; i++) {
        try {
          const stream = session.request({ ':path': '/api/server/ping' })
          stream.on('error', () => {})
          stream.close(h2.NGHTTP2_CANCEL)
          opened++
        } catch {
          break
        }
      }
      await new Promise(resolve => setImmediate(resolve))
    }
    session.destroy()
  }
  return `${opened} streams opened and reset, ${goaways} GOAWAY(ENHANCE_YOUR_CALM)`
}

/** More idle TCP connections than the process has descriptors, held, then closed. */
async function idleConnections (count: number, holdMs: number): Promise<string> {
  const sockets: Socket[] = []
  let refused = 0
  await Promise.all(Array.from({ length: count }, async () => await new Promise<void>(resolve => {
    const socket = netConnect(port, '127.0.0.1', () => resolve())
    socket.on('error', () => { refused++; resolve() })
    sockets.push(socket)
  })))
  await sleep(holdMs)
  const during = await normalRequest()
  const closedByProxy = sockets.filter(socket => socket.destroyed || socket.readableEnded).length
  for (const socket of sockets) socket.destroy()
  return `${count} opened (${refused} refused, ${closedByProxy} closed by the proxy); a request while they were held: ${during}`
}

/** Uploads that send part of their declared body and then vanish, `parallel` at a time. */
async function abortedUploads (count: number, parallel: number): Promise<string> {
  let started = 0
  const one = async (): Promise<void> => await new Promise(resolve => {
    const req = httpsRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/api/assets',
      rejectUnauthorized: false,
      agent: false,
      headers: { 'content-type': 'application/octet-stream', 'content-length': 10 * 1024 * 1024 }
    })
    req.on('error', () => resolve())
    req.on('close', () => resolve())
    req.write(Buffer.alloc(64 * 1024, 'u'), () => { setTimeout(() => req.destroy(), 5) })
  })
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++
      await one()
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return `${count} uploads cut after 64 KiB of 10 MiB`
}

const floods: Array<[string, () => Promise<string>]> = [
  ['pipelined fan-out: 20 connections x 500 requests', async () => await pipelinedFanOut(20, 500)],
  ['h2: one connection, 2 000 streams at once', async () => await h2StreamFlood(2000)],
  ['h2: rapid reset for 5 s', async () => await h2RapidReset(5000)],
  [`idle connections: ${FD_LIMIT + 100} held 3 s`, async () => await idleConnections(FD_LIMIT + 100, 3000)],
  ['aborted uploads: 1 000, 50 at a time', async () => await abortedUploads(1000, 50)]
]

/** Waits (bounded) for the descriptors and memory to come back near the baseline. */
async function settle (): Promise<Figures> {
  const end = Date.now() + 30_000
  let now = figures()
  while (Date.now() < end) {
    now = figures()
    if (now.fds <= baseline.fds * (1 + TOLERANCE) && now.rssMb <= baseline.rssMb * (1 + TOLERANCE)) break
    await sleep(500)
  }
  return now
}

const rows: string[] = []
const failures: string[] = []
console.log(`proxy pid ${String(child.pid)}, ulimit -n ${FD_LIMIT}; baseline: ${baseline.fds} fds, ${baseline.rssMb.toFixed(1)} MB RSS`)
for (const [name, flood] of floods) {
  const began = Date.now()
  let result: string
  try {
    result = await flood()
  } catch (error) {
    result = `flood failed: ${(error as Error).message}`
  }
  const seconds = ((Date.now() - began) / 1000).toFixed(1)
  const alive = exitedWith === undefined
  const status = alive ? await normalRequest() : 'exited'
  const after = alive ? await settle() : { fds: NaN, rssMb: NaN }
  const fdsOk = after.fds <= baseline.fds * (1 + TOLERANCE)
  const rssOk = after.rssMb <= baseline.rssMb * (1 + TOLERANCE)
  rows.push(`| ${name} | ${seconds} s | ${result} | ${alive ? 'yes' : `no (${String(exitedWith)})`} | ${status} | ${after.fds} | ${after.rssMb.toFixed(1)} |`)
  if (!alive) failures.push(`${name}: the proxy exited (${String(exitedWith)})`)
  else if (status !== 200) failures.push(`${name}: a normal request afterwards got ${status}`)
  if (alive && !fdsOk) failures.push(`${name}: ${after.fds} fds, over baseline ${baseline.fds} + 10 %`)
  if (alive && !rssOk) failures.push(`${name}: ${after.rssMb.toFixed(1)} MB RSS, over baseline ${baseline.rssMb.toFixed(1)} + 10 %`)
  console.log(rows[rows.length - 1])
}

console.log('\n| flood | took | what happened | alive | normal request after | fds after | RSS MB after |')
console.log('|---|---|---|---|---|---|---|')
for (const row of rows) console.log(row)
console.log(`\nbaseline: ${baseline.fds} fds, ${baseline.rssMb.toFixed(1)} MB RSS (node ${process.version})`)

const exited = exitedWith !== undefined ? Promise.resolve() : once(child, 'exit')
child.kill('SIGTERM')
const stopped = await Promise.race([exited.then(() => true), sleep(40_000).then(() => false)])
if (!stopped) {
  failures.push('the proxy did not exit within 40 s of SIGTERM')
  child.kill('SIGKILL')
}
upstream.closeAllConnections()
upstream.close()
if (failures.length > 0) {
  console.log(`\nFAILED:\n- ${failures.join('\n- ')}\n\nproxy output (last 4 000 characters):\n${output.slice(-4000)}`)
  process.exit(1)
}
console.log('\nsoak: every flood survived, and descriptors and memory came back')
