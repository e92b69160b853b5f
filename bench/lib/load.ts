// The load: wrk for request rates, an open-loop undici client for latency at a fixed rate,
// node:http and curl for large transfers, ws for WebSockets. Everything here runs on the load core.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Pool } from 'undici'
import WebSocket from 'ws'
import { LOAD_CORE } from './targets.js'
import { sleep } from './processes.js'

export interface WrkResult {
  rps: number
  p50: number
  p99: number
  requests: number
  /** connect/read/write/timeout errors plus non-2xx/3xx answers */
  errors: number
}

function ms (value: string, unit: string): number {
  const n = Number(value)
  if (unit === 'us') return n / 1000
  if (unit === 's') return n * 1000
  if (unit === 'm') return n * 60_000
  return n
}

export function parseWrk (output: string): WrkResult {
  const percentile = (p: string): number => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(output)
    if (match === null) throw new Error(`wrk output without a ${p}% line:\n${output}`)
    return ms(match[1], match[2])
  }
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output)
  const requests = /^\s+(\d+) requests in/m.exec(output)
  if (rps === null || requests === null) throw new Error(`unexpected wrk output:\n${output}`)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output)
  const errors = (socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0)) + Number(non2xx?.[1] ?? 0)
  return { rps: Number(rps[1]), p50: percentile('50'), p99: percentile('99'), requests: Number(requests[1]), errors }
}

/**
 * wrk, one thread on the load core. --timeout 10s so that slow answers count in the tail
 * instead of vanishing as timeouts (wrk's default is 2 s).
 */
export async function wrk (url: string, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<WrkResult> {
  const headerArgs = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
  const args = ['-c', String(LOAD_CORE), 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '--latency', ...headerArgs, url]
  const output = await new Promise<string>((resolve, reject) => {
    execFile('taskset', args, { timeout: (seconds + 30) * 1000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`wrk failed: ${error.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
  return parseWrk(output)
}

function percentileOf (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p / 100))]
}

export interface RateResult { p50: number, p99: number, achieved: number, errors: number }

/**
 * Open loop: request i is sent at start + i / rate whatever happened to earlier ones, on a pool
 * that opens another connection rather than queue, so a slow answer cannot hold back the next
 * request and hide the tail (the "coordinated omission" of closed-loop tools such as
 * autocannon's -R, where each connection waits for its answer). Timer ticks, not a busy loop:
 * a spinning client would take the load core from the upstream. Latency is counted from the
 * moment the request is handed to undici, so timer jitter, the same for every target, stays
 * out of it. The first second warms up and is not counted.
 */
export async function fixedRate (url: string, rate: number, seconds: number): Promise<RateResult> {
  const origin = new URL(url)
  const pool = new Pool(origin.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 })
  const latencies: number[] = []
  let errors = 0
  const total = rate * (seconds + 1)
  const inFlight = new Set<Promise<void>>()
  const send = (record: boolean): void => {
    const sentAt = performance.now()
    const done = pool.request({ path: origin.pathname, method: 'GET' }).then(async ({ statusCode, body }) => {
      await body.dump()
      if (statusCode !== 200) errors++
      else if (record) latencies.push(performance.now() - sentAt)
    }, () => { errors++ })
    inFlight.add(done)
    done.finally(() => inFlight.delete(done)).catch(() => {})
  }
  const started = performance.now()
  let sent = 0
  while (sent < total) {
    const now = performance.now()
    while (sent < total && started + sent * 1000 / rate <= now) {
      send(sent >= rate)
      sent++
    }
    await sleep(1)
  }
  const elapsed = (performance.now() - started) / 1000
  await Promise.all(inFlight)
  await pool.close()
  latencies.sort((a, b) => a - b)
  return { p50: percentileOf(latencies, 50), p99: percentileOf(latencies, 99), achieved: total / elapsed, errors }
}

export interface TransferOptions {
  /** CA file for https */
  caFile?: string
}

/** curl for downloads: the cheapest client there is, and it shares the load core with the upstream. */
async function curl (args: string[], timeoutMs: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('taskset', ['-c', String(LOAD_CORE), 'curl', '--silent', '--show-error', '--max-time', String(timeoutMs / 1000), ...args], { timeout: timeoutMs + 5000, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`curl: ${stderr.trim() || error.message}`))
      else resolve(stdout)
    })
  })
}

function tlsArgs (base: string, options: TransferOptions): string[] {
  return base.startsWith('https:') ? ['--cacert', options.caFile ?? '', '--resolve', `localhost:${new URL(base).port}:127.0.0.1`] : []
}

function curlUrl (base: string, path: string): string {
  const url = new URL(path, base)
  // the certificate names localhost; --resolve keeps the connection on 127.0.0.1
  if (url.protocol === 'https:') url.hostname = 'localhost'
  return url.href
}

const UPLOAD_CHUNK = Buffer.alloc(1024 * 1024, 'upload')

/**
 * POSTs `size` bytes with Content-Length, as a mobile upload does; MB/s (10^6), to the answer.
 * Node with 1 MiB writes, not curl: curl's 64 KiB upload loop tops out near 300 MB/s here,
 * below what the proxies can take.
 */
export async function upload (base: string, size: number, options: TransferOptions): Promise<number> {
  const url = new URL('/upload', base)
  const started = performance.now()
  const [status, answer] = await new Promise<[number, string]>((resolve, reject) => {
    const init = {
      method: 'POST',
      agent: false as const,
      headers: { 'content-type': 'multipart/form-data; boundary=----bench', 'content-length': size }
    }
    const onResponse = (res: IncomingMessage): void => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve([res.statusCode ?? 0, text]))
      res.on('error', reject)
    }
    const req = url.protocol === 'https:'
      ? httpsRequest(url, { ...init, ca: readFileSync(options.caFile ?? ''), servername: 'localhost' }, onResponse)
      : httpRequest(url, init, onResponse)
    req.setTimeout(600_000, () => req.destroy(new Error('upload stalled')))
    req.on('error', reject)
    let left = size
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, UPLOAD_CHUNK.length)
        left -= n
        if (!req.write(n === UPLOAD_CHUNK.length ? UPLOAD_CHUNK : UPLOAD_CHUNK.subarray(0, n))) {
          req.once('drain', pump)
          return
        }
      }
      req.end()
    }
    pump()
  })
  const seconds = (performance.now() - started) / 1000
  const received = status === 200 ? (JSON.parse(answer) as { bytes: number }).bytes : undefined
  if (received !== size) throw new Error(`upload to ${base}: HTTP ${status}, the upstream got ${received ?? answer.slice(0, 80)} of ${size} bytes`)
  return size / seconds / 1e6
}

/** GETs `size` bytes; MB/s (10^6), request to last byte. */
export async function download (base: string, size: number, options: TransferOptions): Promise<number> {
  const out = await curl([...tlsArgs(base, options), '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', curlUrl(base, `/download/${size}`)], 1_800_000)
  const [status, received, seconds] = out.split(' ').map(Number)
  if (status !== 200 || received !== size) throw new Error(`download from ${base}: HTTP ${status}, ${received} of ${size} bytes`)
  return size / seconds / 1e6
}

const SOCKET_PATH = '/api/socket.io/?EIO=4&transport=websocket'

export async function openSocket (base: string): Promise<WebSocket> {
  const ws = new WebSocket(base.replace(/^http/, 'ws') + SOCKET_PATH, { perMessageDeflate: false })
  const timer = setTimeout(() => ws.terminate(), 30_000)
  try {
    await once(ws, 'open')
  } finally {
    clearTimeout(timer)
  }
  return ws
}

/** Opens `count` sockets, `batch` handshakes at a time. */
export async function openSockets (base: string, count: number, batch = 200): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < count; i += batch) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(batch, count - i) }, async () => await openSocket(base))))
  }
  return sockets
}

const MESSAGE = '42["on_asset_update",{"id":"6f0c2a8e-7a1e-4c59-9d2b-8f1f6c2b1a3d","isFavorite":true}]'

/** Round trips per second: each of `count` sockets sends, waits for the echo, sends again. */
export async function echoRate (base: string, count: number, seconds: number): Promise<number> {
  const sockets = await openSockets(base, count)
  let trips = 0
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(sockets.map(async ws => await new Promise<void>((resolve, reject) => {
    ws.on('message', () => {
      trips++
      if (performance.now() < deadline) ws.send(MESSAGE)
      else resolve()
    })
    ws.on('close', () => reject(new Error('socket closed during the echo')))
    ws.send(MESSAGE)
  })))
  const rate = trips / ((performance.now() - started) / 1000)
  for (const ws of sockets) {
    ws.removeAllListeners('close')
    ws.terminate()
  }
  await sleep(200)
  return rate
}
