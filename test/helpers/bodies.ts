// Bodies for the streaming tests: generated on the fly (never held whole in memory) and hashed
// while they move, so that gigabytes can be checked byte for byte on both sides of the proxy.
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes, type Hash } from 'node:crypto'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import { root, serverCommand } from './ops.js'
import { within } from './wait.js'
import { closedPort } from './websocket.js'

/** Byte count and running SHA-1 of everything passed to `update`. */
export class Digest {
  bytes = 0
  private readonly hash: Hash = createHash('sha1')

  update (chunk: Buffer): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
  }

  /** Ends the hash: call once, after the last chunk. */
  sha1 (): string {
    return this.hash.digest('hex')
  }
}

/**
 * `total` bytes made as they are read, in chunks of `chunkSize`, each a random block stamped
 * with its index (so no two chunks are equal), fed to `digest` as they leave.
 */
export function generatedBody (total: number, digest: Digest, chunkSize = 256 * 1024): Readable {
  const block = randomBytes(chunkSize)
  let index = 0
  return new Readable({
    highWaterMark: chunkSize,
    read () {
      const size = Math.min(chunkSize, total - digest.bytes)
      if (size === 0) {
        this.push(null)
        return
      }
      const chunk = Buffer.allocUnsafe(size)
      block.copy(chunk, 0, 0, size)
      if (size >= 4) chunk.writeUInt32BE(index++ % 2 ** 32, 0)
      digest.update(chunk)
      this.push(chunk)
    }
  })
}

/** Reads `stream` to its end into a digest. */
export async function digestOf (stream: AsyncIterable<Buffer>): Promise<Digest> {
  const digest = new Digest()
  for await (const chunk of stream) digest.update(chunk)
  return digest
}

/** What an upstream saw of one request's body: every byte, and whether it ended or was cut. */
export interface ReceivedBody {
  body: Buffer
  /** true when the body ended normally, false when the request was aborted or errored. */
  complete: boolean
}

/** Collects a request body until it ends or the connection is cut (small bodies only). */
export async function receiveBody (req: IncomingMessage, onData?: (received: number) => void): Promise<ReceivedBody> {
  return await new Promise(resolve => {
    const chunks: Buffer[] = []
    let received = 0
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      onData?.(received)
    })
    req.on('error', () => {})
    req.on('close', () => resolve({ body: Buffer.concat(chunks), complete: req.complete }))
  })
}

/** A promise with its resolve function outside, for one side of a test to wait for the other. */
export function signal<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>(_resolve => { resolve = _resolve })
  return { promise, resolve }
}

/** Sets the process's peak RSS (VmHWM) back to its current RSS (Linux >= 4.0), so that start-up is not counted. */
export async function resetPeakResident (pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5')
}

/** Peak resident set size of process `pid` in bytes (VmHWM in /proc/<pid>/status, Linux). */
export async function peakResidentBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`no VmHWM for process ${pid}`)
  return Number(match[1]) * 1024
}

export interface CurlResult {
  /** The response body curl wrote to stdout. */
  body: string
  statusCode: number
  /** Request body bytes curl sent (`%{size_upload}`). */
  uploaded: number
}

/** Runs the system curl with `args` plus a trailer that reports the status and bytes sent. */
export async function curl (args: string[]): Promise<CurlResult> {
  const marker = '\n--curl--'
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('/usr/bin/curl', ['--silent', '--show-error', '--write-out', `${marker}%{http_code} %{size_upload}`, ...args], {
      maxBuffer: 1024 * 1024,
      timeout: 60_000
    }, (error, out) => error === null ? resolve(out) : reject(error))
  })
  const at = stdout.lastIndexOf(marker)
  const [statusCode, uploaded] = stdout.slice(at + marker.length).split(' ').map(Number)
  return { body: stdout.slice(0, at), statusCode, uploaded }
}

export interface BuiltProxy {
  pid: number
  url: string
}

/**
 * Starts the server in its own process as `npm start` does (the bundle, same node flags), with
 * `env` as its whole environment (literal strings, nothing inherited); stopped with SIGTERM when
 * the test ends.
 */
export async function startBuiltProxy (t: Test, upstream: string, env: Record<string, string> = {}): Promise<BuiltProxy> {
  const command = await serverCommand()
  const port = await closedPort()
  const variables = { UPSTREAM_URL: upstream, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env }
  // through env(1) because tap adds its process-tracking loader to every child's NODE_OPTIONS,
  // which would be counted in the proxy's memory; env execs node, so the pid stays the proxy's
  const child = spawn('/usr/bin/env', [
    '-i', ...Object.entries(variables).map(([name, value]) => `${name}=${value}`), ...command
  ], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })
  // pino writes one JSON line per event; the log keeps flowing (and must be read) after this
  const listening = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', line => {
      if (line.includes('Server listening at')) resolve()
    })
    child.once('exit', code => reject(new Error(`proxy process exited with ${String(code)}`)))
  })
  await within(listening, 30_000, 'proxy process start')
  return { pid: child.pid as number, url: `http://127.0.0.1:${port}` }
}
