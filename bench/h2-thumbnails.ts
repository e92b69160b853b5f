// What HTTP/2 on the TLS listener does to the web timeline: a page that loads 200 thumbnails at
// once. A browser opens at most 6 HTTP/1.1 connections per origin and queues the rest; over
// HTTP/2 it sends all 200 on one connection. Both go through the real proxy (the bundle npm start runs, its
// own process, production settings, TLS with an EC P-256 certificate) to an upstream that serves
// 200 different ~20 KB thumbnails, each after ~5 ms, as Immich does from its thumbnail cache.
// Each load starts on fresh connections (handshakes included), as a page opened anew; loads
// alternate h1, h2, h1, … after one warm-up of each, and the median of each is reported.
//
//   npx tsx bench/h2-thumbnails.ts            (--runs=N, --latency=ms, --count=N)
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { Agent, request as httpsRequest } from 'node:https'
import { connect as http2Connect } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generate } from 'selfsigned'
import { START_ENTRY, START_FLAGS } from '../test/helpers/start-flags.js'

function option (name: string, fallback: number): number {
  const arg = process.argv.find(a => a.startsWith(`--${name}=`))
  return arg === undefined ? fallback : Number(arg.split('=')[1])
}

const COUNT = option('count', 200)
const RUNS = option('runs', 5)
const LATENCY_MS = option('latency', 5)
const THUMBNAIL_BYTES = 20 * 1024
// what browsers allow per origin over HTTP/1.1
const H1_CONNECTIONS = 6

const root = fileURLToPath(new URL('..', import.meta.url))
const paths = Array.from({ length: COUNT }, (_, i) => `/api/assets/${i.toString(16).padStart(8, '0')}-thumb/thumbnail?size=thumbnail`)

/** 200 different bodies, so that nothing on the way could serve one for another. */
const thumbnails = new Map(paths.map((path, i) => {
  const body = Buffer.alloc(THUMBNAIL_BYTES + (i % 7) * 512)
  for (let j = 0; j < body.length; j += 4) body.writeUInt32BE((i * 2654435761 + j) >>> 0, j)
  return [path, body]
}))

async function startUpstream (): Promise<{ url: string, close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const body = thumbnails.get(req.url ?? '')
    setTimeout(() => {
      if (body === undefined) {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { 'content-type': 'image/webp', 'content-length': body.length, 'cache-control': 'private, max-age=86400, no-transform' })
      res.end(body)
    }, LATENCY_MS)
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** The proxy as users run it, in its own process; resolves once it listens. */
async function startProxy (upstream: string, certFile: string, keyFile: string): Promise<{ port: number, stop: () => Promise<void> }> {
  const port = await freePort()
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  const child = spawn(process.execPath, [...START_FLAGS, START_ENTRY], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      UPSTREAM_URL: upstream,
      HOST: '127.0.0.1',
      PORT: String(port),
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
      ADMIN_PORT: 'off',
      LOG_LEVEL: 'info'
    },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const listening = new Promise<void>((resolve, reject) => {
    // the access log keeps coming and must be read, or the proxy would block on a full pipe
    createInterface({ input: child.stdout }).on('line', line => {
      if (line.includes(`Server listening at https://127.0.0.1:${port}`)) resolve()
    })
    child.once('exit', code => reject(new Error(`proxy exited with ${String(code)}`)))
  })
  await listening
  return {
    port,
    stop: async () => {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
}

/** All thumbnails over HTTP/1.1, at most 6 connections, fresh ones; ms and bytes. */
async function loadOverHttp1 (port: number, ca: string): Promise<{ ms: number, bytes: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: H1_CONNECTIONS, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] })
  const started = performance.now()
  const sizes = await Promise.all(paths.map(async path => await new Promise<number>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, agent, headers: { accept: 'image/webp,*/*' } }, res => {
      if (res.statusCode !== 200 || res.httpVersion !== '1.1') reject(new Error(`h1 ${path}: ${String(res.statusCode)} over ${res.httpVersion}`))
      let bytes = 0
      res.on('data', (chunk: Buffer) => { bytes += chunk.length })
      res.on('end', () => resolve(bytes))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })))
  const ms = performance.now() - started
  agent.destroy()
  return { ms, bytes: check(sizes) }
}

/** All thumbnails over one fresh HTTP/2 connection, every request sent at once; ms and bytes. */
async function loadOverHttp2 (port: number, ca: string): Promise<{ ms: number, bytes: number }> {
  const started = performance.now()
  const session = http2Connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' })
  session.on('error', () => {})
  const sizes = await Promise.all(paths.map(async path => await new Promise<number>((resolve, reject) => {
    const stream = session.request({ ':path': path, accept: 'image/webp,*/*' })
    stream.on('response', headers => {
      if (headers[':status'] !== 200) reject(new Error(`h2 ${path}: ${String(headers[':status'])}`))
    })
    let bytes = 0
    stream.on('data', (chunk: Buffer) => { bytes += chunk.length })
    stream.on('end', () => resolve(bytes))
    stream.on('error', reject)
  })))
  const ms = performance.now() - started
  if (session.alpnProtocol !== 'h2') throw new Error(`h2 load negotiated ${String(session.alpnProtocol)}`)
  session.close()
  return { ms, bytes: check(sizes) }
}

/** Every thumbnail arrived whole: the byte total, or an error. */
function check (sizes: number[]): number {
  sizes.forEach((size, i) => {
    const expected = thumbnails.get(paths[i])?.length
    if (size !== expected) throw new Error(`${paths[i]}: ${size} bytes, expected ${String(expected)}`)
  })
  return sizes.reduce((a, b) => a + b, 0)
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const dir = mkdtempSync(join(tmpdir(), 'h2-thumbnails-'))
const upstream = await startUpstream()
let proxy: Awaited<ReturnType<typeof startProxy>> | undefined
try {
  const generated = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]
  })
  writeFileSync(join(dir, 'fullchain.pem'), generated.cert)
  writeFileSync(join(dir, 'privkey.pem'), generated.private)
  proxy = await startProxy(upstream.url, join(dir, 'fullchain.pem'), join(dir, 'privkey.pem'))

  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB`)
  console.log(`${COUNT} thumbnails of ~${THUMBNAIL_BYTES / 1024} KB, upstream latency ${LATENCY_MS} ms, fresh connections per load, ${RUNS} loads each (after a warm-up)`)
  await loadOverHttp1(proxy.port, generated.cert)
  await loadOverHttp2(proxy.port, generated.cert)
  const h1: number[] = []
  const h2: number[] = []
  let bytes = 0
  for (let run = 0; run < RUNS; run++) {
    const one = await loadOverHttp1(proxy.port, generated.cert)
    const two = await loadOverHttp2(proxy.port, generated.cert)
    h1.push(one.ms)
    h2.push(two.ms)
    bytes = two.bytes
    console.log(`  run ${run + 1}: h1 ${one.ms.toFixed(1)} ms, h2 ${two.ms.toFixed(1)} ms`)
  }
  console.log(`page of ${(bytes / 2 ** 20).toFixed(2)} MiB`)
  console.log(`HTTP/1.1, ${H1_CONNECTIONS} connections: median ${median(h1).toFixed(1)} ms`)
  console.log(`HTTP/2, 1 connection:   median ${median(h2).toFixed(1)} ms`)
  console.log(`ratio h2/h1: ${(median(h2) / median(h1)).toFixed(2)}`)
} finally {
  await proxy?.stop()
  await upstream.close()
  rmSync(dir, { recursive: true, force: true })
}
