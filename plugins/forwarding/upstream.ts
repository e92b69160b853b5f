/// <reference path="./undici-internals.d.ts" />
import type { FastifyReply, FastifyRequest, RawServerBase, RouteGenericInterface } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import createError from '@fastify/error'
import Pool from 'undici/lib/dispatcher/pool.js'
import { headerNameToString } from 'undici/lib/core/util.js'
import { HOP_BY_HOP, connectionFields, stripHopByHop } from './hop-by-hop.js'
import { DEFAULTS } from '../defaults.js'
import { ImmichServer, ImmichServers, type ImmichServersOptions } from './immich-servers.js'
import { UpstreamBusyError } from './ask-immich.js'

export interface UpstreamOptions {
  /** Origin of the Immich server, e.g. http://immich-server:2283. */
  upstream: string
  /**
   * Longest silence, in ms, while waiting for response headers or between body chunks. Default
   * 600 000, the reference configs' proxy_read_timeout. 0 waits forever.
   */
  proxyTimeout?: number
  /**
   * Most connections to Immich at once; past it requests wait in the pool for up to
   * proxyTimeout. Default 1024 (UPSTREAM_MAX_CONNECTIONS).
   */
  upstreamMaxConnections?: number
}

// undici's index loads fetch, WebSocket, the caches and more, which start-up and idle memory would
// pay for (docs/design.md): the pool is imported by path (no exports map; types in
// undici-internals.d.ts; test/undici-internals.test.ts fails should the files move).

type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>
type AnyReply = FastifyReply<RouteGenericInterface, RawServerBase>

export function upstreamDispatcher ({ upstream, proxyTimeout = DEFAULTS.proxyTimeout, upstreamMaxConnections = DEFAULTS.upstreamMaxConnections }: UpstreamOptions): Dispatcher {
  return new Pool(upstream, {
    connections: upstreamMaxConnections,
    pipelining: 1,
    headersTimeout: proxyTimeout,
    bodyTimeout: proxyTimeout
  })
}

/** HTTP/2's `:method`, `:path`, … : the request line, which undici sends its own way. */
function isPseudoHeader (name: string): boolean {
  return name.startsWith(':')
}

/** A new object: the client's headers stay as they arrived. */
export function upstreamRequestHeaders (request: AnyRequest): Record<string, string | string[]> {
  const incoming = request.raw.headers
  const dropped = connectionFields(incoming.connection)
  const outgoing: Record<string, string | string[]> = {}
  for (const name in incoming) {
    const value = incoming[name]
    // Node has already answered `100 Continue` to the client; undici refuses to send Expect itself.
    if (value === undefined || isPseudoHeader(name) || HOP_BY_HOP.has(name) || name === 'expect' || dropped?.has(name) === true) continue
    outgoing[name] = value
  }
  Object.assign(outgoing, request.forwardedHeaders)
  return outgoing
}

/** Location untouched; repeated fields (Set-Cookie) stay arrays, except Content-Type. */
export function clientResponseHeadersFromRaw (raw: Buffer[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = Object.create(null)
  let connection: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerNameToString(raw[i])
    const value = raw[i + 1].toString('latin1')
    if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`
    if (HOP_BY_HOP.has(name)) continue
    const previous = headers[name]
    if (previous === undefined) headers[name] = value
    // one media type (RFC 9110 §8.3), which Fastify reads to label the answer: the first
    // stays, as in Node's own client
    else if (name === 'content-type') continue
    else if (typeof previous === 'string') headers[name] = [previous, value]
    else previous.push(value)
  }
  const dropped = connectionFields(connection)
  if (dropped !== undefined) for (const name of dropped) delete headers[name]
  return headers
}

export function clientResponseHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return stripHopByHop(headers)
}

/** A status outside 100-599 (RFC 9110 §15), which Node and Fastify refuse to send: 502. */
export const UnrelayableAnswerError = createError('IMMICH_PROXY_UNRELAYABLE_ANSWER', 'Immich answered with status %s', 502)

export function relayableStatus (statusCode: number): boolean {
  return statusCode >= 200 && statusCode <= 599
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

function rootCause (error: Error): Error & { code?: string, statusCode?: number } {
  let cause: Error = error
  while (cause.cause instanceof Error) cause = cause.cause
  return cause
}

const UNANSWERED = 'Immich did not answer; is the server running?'
const TOO_SLOW = 'Immich did not answer in time'
const UpstreamFailedError = createError('IMMICH_PROXY_UPSTREAM_FAILED', UNANSWERED, 502)
const UpstreamTimeoutError = createError('IMMICH_PROXY_UPSTREAM_TIMEOUT', TOO_SLOW, 504)

function timedOut (error: Error, cause: Error & { code?: string }): boolean {
  return TIMEOUT_CODES.has(cause.code ?? '') || TIMEOUT_CODES.has((error as { code?: string }).code ?? '')
}

/** For a stream failing before its first byte: sendUpstreamError's 502/504, detail as cause. */
export function upstreamFailure (error: Error): Error {
  return timedOut(error, rootCause(error)) ? new UpstreamTimeoutError({ cause: error }) : new UpstreamFailedError({ cause: error })
}

/**
 * 504 when Immich was too slow, a guard's own 4xx (the body limit), 503 when no connection came
 * free, 502 otherwise. The message never names the upstream address; the log keeps the detail.
 */
export function sendUpstreamError (reply: AnyReply, error: Error): void {
  const cause = rootCause(error)
  // An unread request body would otherwise be read to its end before the connection is reused.
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  let statusCode = 502
  let message = UNANSWERED
  if (cause instanceof UpstreamBusyError) {
    statusCode = 503
    message = 'The proxy is at its limit of connections to Immich; try again shortly'
    reply.header('retry-after', DEFAULTS.retryAfter)
  } else if (timedOut(error, cause)) {
    statusCode = 504
    message = TOO_SLOW
  } else if (cause.statusCode !== undefined && cause.statusCode >= 400 && cause.statusCode < 500) {
    reply.send(cause)
    return
  }
  reply.request.log.warn({ err: cause }, 'upstream request failed')
  reply.code(statusCode).type('application/json; charset=utf-8').send({
    statusCode,
    error: statusCode === 504 ? 'Gateway Timeout' : statusCode === 503 ? 'Service Unavailable' : 'Bad Gateway',
    message
  })
}

/** A flood of `/.well-known/immich` (a small JSON document the apps fetch once) gets this many connections, not a share of UPSTREAM_MAX_CONNECTIONS. */
const WELL_KNOWN_MAX_CONNECTIONS = 16

/** The well-known document's pool: at most WELL_KNOWN_MAX_CONNECTIONS. */
export function wellKnownDispatcher (options: UpstreamOptions): Dispatcher {
  return upstreamDispatcher({ ...options, upstreamMaxConnections: Math.min(options.upstreamMaxConnections ?? WELL_KNOWN_MAX_CONNECTIONS, WELL_KNOWN_MAX_CONNECTIONS) })
}

/** ImmichUpstream's options: one server (`upstream`) or several (`upstreams`). */
export type ImmichUpstreamOptions = UpstreamOptions & ImmichServersOptions & {
  /** Every Immich server, when there are several (UPSTREAM_URL a list); `upstream` is then the first. */
  upstreams?: string[]
}

/**
 * Immich as the proxy reaches it: its servers (immich-servers.ts), each with its pools, and the
 * dispatchers that choose between them, for the forwarder and the access gate's questions
 * (`dispatcher`) and for the well-known route (`wellKnown`). Listeners of one process share one
 * (src/run.ts).
 */
export class ImmichUpstream {
  readonly servers: ImmichServers
  readonly dispatcher: Dispatcher
  readonly wellKnown: Dispatcher

  constructor (readonly options: ImmichUpstreamOptions) {
    const origins = options.upstreams ?? [options.upstream]
    this.servers = new ImmichServers(origins.map(origin => {
      const server = { ...options, upstream: origin }
      return new ImmichServer(origin, upstreamDispatcher(server), wellKnownDispatcher(server))
    }), options)
    const [only] = this.servers.servers
    if (this.servers.balanced) {
      this.dispatcher = this.servers.dispatcher('pool')
      this.wellKnown = this.servers.dispatcher('wellKnown')
    } else {
      // its own pools, with nothing in between: no choice to make, nothing to retry on
      this.dispatcher = only.pool
      this.wellKnown = only.wellKnown
    }
  }

  async close (): Promise<void> {
    this.servers.stopChecks()
    await Promise.all(this.servers.servers.flatMap(server => [server.pool.destroy(), server.wellKnown.destroy()]))
  }
}
