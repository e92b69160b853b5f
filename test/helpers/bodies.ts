// Bodies for the streaming tests: generated on the fly (never held whole in memory) and hashed
// while they move, so that gigabytes can be checked byte for byte on both sides of the proxy;
// and the memory of the proxy's process, read from /proc, to show that they did not pile up.
import { execFile } from 'node:child_process'
import { createHash, randomBytes, type Hash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'

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

async function statusBytes (pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (match === null) throw new Error(`no ${field} for process ${pid}`)
  return Number(match[1]) * 1024
}

/** Resident set size of process `pid` in bytes (VmRSS in /proc/<pid>/status, Linux). */
export async function residentBytes (pid: number): Promise<number> {
  return await statusBytes(pid, 'VmRSS')
}

/** Peak resident set size of process `pid` in bytes (VmHWM in /proc/<pid>/status, Linux). */
export async function peakResidentBytes (pid: number): Promise<number> {
  return await statusBytes(pid, 'VmHWM')
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
