// What the HTTP proxy and the well-known route share about talking to Immich: the connection
// pool, the request and response header rules, and how upstream failures look to clients.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RawServerBase, RouteGenericInterface } from 'fastify'
import type { FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import { stripHopByHop } from './hop-by-hop.js'

export interface UpstreamOptions {
  /** Origin of the Immich server, e.g. http://immich-server:2283. */
  upstream: string
  /**
   * Longest silence, in ms, while waiting for response headers or between body chunks. Default
   * 600 000, the reference configs' proxy_read_timeout. 0 waits forever.
   */
  proxyTimeout?: number
}

export const DEFAULT_PROXY_TIMEOUT = 600_000

// the proxy serves HTTP/1.1 and HTTP/2 clients alike
type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>
type AnyReply = FastifyReply<RouteGenericInterface, RawServerBase>

// reply-from rebuilds the path with `new URL()`, which re-encodes characters such as `{`, `|`
// or `'` and re-serialises the query. Immich must get the request target byte for byte (nginx
// passes it untouched when proxy_pass has no URI part), so the raw target rides along under a
// symbol, which undici never serialises, and this interceptor puts it back as the path.
const kRawTarget = Symbol('immich-proxy.rawTarget')

type HeadersWithTarget = Record<string, string | string[] | undefined> & { [kRawTarget]?: string }

const rawTargetInterceptor: Dispatcher.DispatcherComposeInterceptor = dispatch => (options, handler) => {
  const headers = options.headers as HeadersWithTarget | undefined
  const rawTarget = headers?.[kRawTarget]
  return dispatch(rawTarget === undefined ? options : { ...options, path: rawTarget }, handler)
}

/** One pool per upstream; requests beyond the open connections open new ones, never queue. */
export function upstreamDispatcher ({ upstream, proxyTimeout = DEFAULT_PROXY_TIMEOUT }: UpstreamOptions): Dispatcher {
  return new Pool(upstream, {
    connections: null,
    pipelining: 1,
    headersTimeout: proxyTimeout,
    bodyTimeout: proxyTimeout
  }).compose(rawTargetInterceptor)
}

/** Request headers for Immich: the client's, less hop-by-hop fields, plus the forwarded ones. */
export function upstreamRequestHeaders (request: AnyRequest, headers: IncomingHttpHeaders): HeadersWithTarget {
  const outgoing: HeadersWithTarget = stripHopByHop(headers)
  // Node has already answered `100 Continue` to the client; undici refuses to send Expect itself.
  delete outgoing.expect
  Object.assign(outgoing, request.forwardedHeaders)
  outgoing[kRawTarget] = request.raw.url
  return outgoing
}

/** Response headers for the client: Immich's, less hop-by-hop fields; Location untouched. */
export function clientResponseHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return stripHopByHop(headers)
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT'])

function rootCause (error: Error): Error & { code?: string, statusCode?: number } {
  let cause: Error = error
  while (cause.cause instanceof Error) cause = cause.cause
  return cause
}

/**
 * Maps a failed upstream exchange to what the client may see: 504 when Immich was too slow,
 * the error's own 4xx when it came from a guard on the way (the body limit), 502 otherwise.
 * The message never names the upstream address; the log keeps the detail.
 */
export function sendUpstreamError (reply: AnyReply, error: Error): void {
  const cause = rootCause(error)
  // An unread request body would otherwise be read to its end before the connection is reused.
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  let statusCode = 502
  let message = 'Immich did not answer; is the server running?'
  if (TIMEOUT_CODES.has(cause.code ?? '') || TIMEOUT_CODES.has((error as { code?: string }).code ?? '')) {
    statusCode = 504
    message = 'Immich did not answer in time'
  } else if (cause.statusCode !== undefined && cause.statusCode >= 400 && cause.statusCode < 500) {
    reply.send(cause)
    return
  }
  reply.request.log.warn({ err: cause }, 'upstream request failed')
  reply.code(statusCode).type('application/json; charset=utf-8').send({
    statusCode,
    error: statusCode === 504 ? 'Gateway Timeout' : 'Bad Gateway',
    message
  })
}

/**
 * Node's idle timer on the client's socket (connectionTimeout = PROXY_TIMEOUT) is for the
 * client's silence. While Immich has the turn (it has the request and has not begun to answer,
 * or it has stopped taking the upload so the client is held back) the client is silent because
 * Immich is, and undici's headersTimeout, also PROXY_TIMEOUT, answers that with 504. Node's
 * timer started earlier, at the client's last byte, so it would win and drop the connection
 * without a word. A 'timeout' listener on the response replaces Node's destroy; re-arming the
 * timer keeps the socket guarded should undici never fire.
 */
function deferClientTimeoutToUpstream (request: AnyRequest, reply: AnyReply, done: HookHandlerDoneFunction): void {
  const res = reply.raw as ServerResponse
  res.on('timeout', (socket: Socket) => {
    const immichHasTheTurn = !res.headersSent && (res.req.complete || res.req.isPaused())
    if (immichHasTheTurn && socket.timeout !== undefined) socket.setTimeout(socket.timeout)
    else socket.destroy()
  })
  done()
}

/** @fastify/http-proxy options shared by every route that forwards to Immich. */
export function httpProxyOptions (opts: UpstreamOptions, dispatcher: Dispatcher): FastifyHttpProxyOptions {
  return {
    upstream: opts.upstream,
    undici: dispatcher as FastifyHttpProxyOptions['undici'],
    disableRequestLogging: true,
    // mirrors nginx `proxy_redirect off`
    internalRewriteLocationHeader: false,
    preHandler: deferClientTimeoutToUpstream,
    replyOptions: {
      rewriteRequestHeaders: upstreamRequestHeaders,
      rewriteHeaders: clientResponseHeaders,
      onError: (reply, { error }) => sendUpstreamError(reply, error),
      // never replay a request on its own: Immich's 503 is for the client to see
      retryDelay: () => null
    }
  }
}
