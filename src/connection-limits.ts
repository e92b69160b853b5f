// Guards that keep one client (or many) from spending every file descriptor: a cap on client
// connections derived from the fd limit, accept errors logged instead of fatal, HTTP/2 limits.
import { readFileSync } from 'node:fs'
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2'
import type { Server } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from './config.js'
import { DEFAULTS } from '../plugins/defaults.js'

/** Descriptors kept for what is not a connection: stdio, listeners, certificate and key files, /proc reads. */
export const FD_RESERVE = 64

/** What nginx (http2_max_concurrent_streams) and Caddy advertise. */
export const HTTP2_MAX_CONCURRENT_STREAMS = 100

// Streams a client may reset before their answer, a token bucket per session; past it the session
// gets ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487). A browser scrolling a timeline resets at
// most 100 (the stream limit) at once. Stricter than nghttp2's own limit (1 000, then 33 a
// second), so a flood meets this one first on Node 20.
const RESET_BURST = 500
const RESETS_PER_SECOND = 50

// Linux; elsewhere a conservative guess (macOS's default soft limit is 256, Node raises it)
const FALLBACK_FD_LIMIT = 1024

/** The soft RLIMIT_NOFILE of this process, read from /proc/self/limits; undefined if unknown. */
export function fdLimit (limits = '/proc/self/limits'): number | 'unlimited' | undefined {
  let text: string
  try {
    text = readFileSync(limits, 'latin1')
  } catch {
    return undefined
  }
  const match = /^Max open files\s+(\S+)/m.exec(text)
  if (match === null) return undefined
  return match[1] === 'unlimited' ? 'unlimited' : Number(match[1])
}

export interface ConnectionLimits {
  /** Client connections per proxied listener; 0: no limit. */
  maxConnections: number
  upstreamMaxConnections: number
  /** The descriptor limit the figures were derived from, and whether it was read or guessed. */
  fdLimit: number | 'unlimited'
  fdLimitKnown: boolean
  warnings: string[]
}

/**
 * Client connections get half of what the fd limit leaves past FD_RESERVE, shared by the proxied
 * listeners: each may hold one upstream socket at a time, which takes the other half.
 */
export function connectionLimits (config: Pick<Config, 'maxConnections' | 'upstreamMaxConnections'> & Partial<Pick<Config, 'httpPort'>>, limit = fdLimit()): ConnectionLimits {
  const known = limit !== undefined
  const fds = limit ?? FALLBACK_FD_LIMIT
  const usable = fds === 'unlimited' ? Infinity : Math.max(0, fds - FD_RESERVE)
  const listeners = config.httpPort === undefined ? 1 : 2
  const derived = usable === Infinity ? 0 : Math.max(1, Math.floor(usable / 2 / listeners))
  const maxConnections = config.maxConnections ?? derived
  const clients = maxConnections * listeners
  const upstreamMaxConnections = config.upstreamMaxConnections ??
    (usable === Infinity ? DEFAULTS.upstreamMaxConnections : Math.max(1, Math.min(DEFAULTS.upstreamMaxConnections, Math.floor(usable / 2))))
  const warnings: string[] = []
  if (maxConnections === 0 && usable !== Infinity) {
    warnings.push(`MAX_CONNECTIONS=0: no cap on client connections; past the file-descriptor limit (${String(fds)}) new connections are closed as they are accepted and requests to Immich fail with 502`)
  } else if (clients > usable) {
    warnings.push(`MAX_CONNECTIONS=${maxConnections} is more than the file-descriptor limit (${String(fds)}) allows; past it new connections fail at accept. Raise the limit (ulimit -n, docker --ulimit nofile) or lower MAX_CONNECTIONS`)
  } else if (clients + upstreamMaxConnections > usable) {
    warnings.push(`UPSTREAM_MAX_CONNECTIONS=${upstreamMaxConnections} with MAX_CONNECTIONS=${maxConnections} can exceed the file-descriptor limit (${String(fds)}); requests then get 502 when Immich cannot be reached. Raise the limit or lower them`)
  }
  return { maxConnections, upstreamMaxConnections, fdLimit: fds, fdLimitKnown: known, warnings }
}

function rateLimited (ms: number, log: (count: number, error?: Error) => void): (error?: Error) => void {
  let count = 0
  let last = 0
  return error => {
    count++
    const now = Date.now()
    if (now - last < ms) return
    last = now
    log(count, error)
    count = 0
  }
}

/**
 * Node closes a connection past `maxConnections` as soon as it is accepted (HTTP/2 sessions too).
 * libuv keeps accepting after EMFILE/ENFILE; unhandled, the 'error' Node emits would end the
 * process.
 */
export function guardListener (server: Server, log: FastifyBaseLogger, maxConnections: number): void {
  if (maxConnections > 0) server.maxConnections = maxConnections
  server.on('drop', rateLimited(10_000, count => {
    log.warn({ dropped: count, maxConnections }, 'MAX_CONNECTIONS reached: new connections closed')
  }))
  // Fastify listens for errors itself until it is listening: after that, they are accept errors
  server.once('listening', () => {
    server.on('error', rateLimited(10_000, (count, error) => {
      log.error({ err: error, failures: count }, 'cannot accept connections; the process keeps serving those it has')
    }))
  })
}

const kResets = Symbol('immich-proxy.resets')
type CountedSession = Http2Session & { [kResets]?: { tokens: number, at: number } }

/** Rapid reset: streams reset at once never meet the stream limit, yet each costs a request. */
function resetTooOften (stream: ServerHttp2Stream, session: CountedSession): boolean {
  if (stream.rstCode === undefined || stream.rstCode === constants.NGHTTP2_NO_ERROR || stream.headersSent || session.closed) return false
  const now = Date.now()
  const bucket = session[kResets] ??= { tokens: RESET_BURST, at: now }
  bucket.tokens = Math.min(RESET_BURST, bucket.tokens + (now - bucket.at) * RESETS_PER_SECOND / 1000) - 1
  bucket.at = now
  return bucket.tokens < 0
}

export const HTTP2_SETTINGS = { maxConcurrentStreams: HTTP2_MAX_CONCURRENT_STREAMS }

export function guardHttp2Streams (server: Server, log: FastifyBaseLogger): void {
  const calmed = rateLimited(10_000, count => {
    log.warn({ sessions: count }, 'HTTP/2 client reset too many streams before their answer: GOAWAY(ENHANCE_YOUR_CALM)')
  })
  server.on('stream', (stream: ServerHttp2Stream) => {
    const session = stream.session as CountedSession
    stream.once('close', () => {
      if (!resetTooOften(stream, session)) return
      // graceful: streams already answering finish, new ones are refused
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
      session.close()
      calmed()
    })
  })
}
