// One request to Immich and its answer back, on undici's dispatch API (why not
// @fastify/http-proxy: docs/design.md). The answer goes out through `reply.send`, so every onSend
// hook (HSTS, the access log, an embedder's own) sees it.
import type { FastifyInstance, FastifyReply, FastifyRequest, RawServerBase, RouteGenericInterface } from 'fastify'
import type { ServerResponse } from 'node:http'
import { constants as http2, type Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { declaresBody } from './hop-by-hop.js'
import { UnrelayableAnswerError, clientResponseHeadersFromRaw, relayableStatus, sendUpstreamError, upstreamFailure, upstreamRequestHeaders } from './upstream.js'
import { takeTurn, type Forward } from './connection-turns.js'
import { UpstreamBusyError } from './ask-immich.js'
import { forwarded } from './young-collection.js'
import { DEFAULTS } from '../defaults.js'

type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>
type AnyReply = FastifyReply<RouteGenericInterface, RawServerBase>

class ImmichBody extends Readable {
  constructor (private readonly exchange: Exchange) {
    super()
  }

  override _read (): void {
    this.exchange.resumeUpstream?.()
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    // the client went away (or Fastify gave up on it) before Immich finished: stop Immich too
    if (!this.exchange.complete) this.exchange.abortUpstream(error ?? new Error('client closed the connection'))
    callback(error)
  }
}

/** undici's dispatch handler for one exchange (its callback API: no promise, no wrapper per request). */
class Exchange implements Dispatcher.DispatchHandler {
  complete = false
  resumeUpstream?: () => void
  private abort?: (error: Error) => void
  private waiting?: NodeJS.Timeout
  private abortedWith?: Error
  private answered = false
  private statusCode = 0
  private headers?: Record<string, string | string[]>
  private early?: Buffer[]
  private body?: ImmichBody

  constructor (private readonly reply: AnyReply) {}

  abortUpstream (error: Error): void {
    if (this.complete) return
    if (this.abort === undefined) this.abortedWith = error
    else this.abort(error)
  }

  // The client leaving before Immich answered cancels the request to Immich, as nginx does.
  // ('close': an HTTP/2 response reports itself finished when its stream is reset.)
  // Every answered request ends here too: the Error (a stack captured) only for one still running.
  readonly onClientClose = (): void => {
    if (this.body === undefined && !this.complete) this.abortUpstream(new Error('client closed the connection'))
  }

  waitForConnection (ms: number): void {
    if (this.abort !== undefined || this.complete || ms <= 0) return
    this.waiting = setTimeout(() => {
      const error = new UpstreamBusyError()
      // still queued in the pool: undici drops it when a connection frees (onConnect)
      this.abortedWith = error
      this.onError(error)
    }, ms).unref()
  }

  onConnect (abort: (error?: Error) => void): void {
    clearTimeout(this.waiting)
    this.abort = abort
    if (this.abortedWith !== undefined) abort(this.abortedWith)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // interim answers (103 Early Hints) are not passed on; the final one follows
    if (statusCode < 200) return true
    // Thrown here, undici aborts the exchange and onError answers 502; thrown later, in
    // send(), Fastify's refusal would be an uncaught exception outside any request.
    if (!relayableStatus(statusCode)) throw new UnrelayableAnswerError(statusCode)
    this.resumeUpstream = resume
    this.statusCode = statusCode
    this.headers = clientResponseHeadersFromRaw(rawHeaders)
    // undici parses a whole socket read at once: a small answer's body and end arrive in this
    // same turn. The answer goes to Fastify on the next tick, whole if it is complete by then.
    process.nextTick(answer, this)
    return true
  }

  // undici passes the chunk it wrote (its type declarations still say a byte count)
  onBodySent (chunk: Buffer | number): void {
    forwarded(typeof chunk === 'number' ? chunk : chunk.length)
  }

  onData (chunk: Buffer): boolean {
    forwarded(chunk.length)
    if (this.body !== undefined) return this.body.push(chunk)
    this.early ??= []
    this.early.push(chunk)
    return true
  }

  onComplete (): void {
    this.complete = true
    this.body?.push(null)
  }

  onError (error: Error): void {
    clearTimeout(this.waiting)
    const cut = !this.complete
    this.complete = true
    if (this.body !== undefined) {
      if (this.reply.raw.headersSent) {
        // an HTTP/2 stream ended without an error code would look complete to the client
        if (cut) resetClientStream(this.reply)
        this.body.destroy(error)
      } else {
        // The client has been told nothing, and Fastify answers the stream's error itself: make
        // it the 502/504 of any upstream failure, without the failed answer's headers.
        forgetHeaders(this.reply)
        this.body.destroy(upstreamFailure(error))
      }
    } else if (!this.answered) {
      this.answered = true
      sendUpstreamError(this.reply, error)
    }
  }

  // Fastify would label a buffer without Content-Type application/octet-stream: such a body streams
  send (): void {
    if (this.answered) return
    this.answered = true
    const headers = this.headers as Record<string, string | string[]>
    const reply = this.reply.code(this.statusCode).headers(headers)
    const early = this.early
    this.early = undefined
    if (this.complete && (early === undefined || headers['content-type'] !== undefined)) {
      reply.send(early === undefined ? undefined : early.length === 1 ? early[0] : Buffer.concat(early))
      return
    }
    const body = this.body = new ImmichBody(this)
    if (early !== undefined) for (const chunk of early) body.push(chunk)
    if (this.complete) body.push(null)
    reply.send(body)
  }
}

/**
 * An answer cut after its headers must look cut: Fastify resets a destroyed HTTP/2 stream with
 * NO_ERROR, which clients take for a complete answer. nginx and Caddy send INTERNAL_ERROR.
 */
function resetClientStream (reply: AnyReply): void {
  const stream = (reply.raw as Partial<Http2ServerResponse>).stream
  if (stream !== undefined && !stream.closed) stream.close(http2.NGHTTP2_INTERNAL_ERROR)
}

function forgetHeaders (reply: AnyReply): void {
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  const res = reply.raw
  for (const name of res.getHeaderNames()) res.removeHeader(name)
}

function answer (exchange: Exchange): void {
  exchange.send()
}

/**
 * While Immich has the turn (it has not begun to answer, or has stopped taking the upload) the
 * client is silent because Immich is, and undici's headersTimeout answers that with 504; Node's
 * idle timer, started at the client's last byte, would win and drop the connection without a
 * word. Re-arming keeps the socket guarded should undici never fire.
 */
function deferClientTimeoutToUpstream (this: ServerResponse, socket: Socket): void {
  const immichHasTheTurn = !this.headersSent && (this.req.complete || this.req.isPaused())
  if (immichHasTheTurn && socket.timeout !== undefined) socket.setTimeout(socket.timeout)
  else socket.destroy()
}

// the request body after every preParsing hook, for the methods whose bodies Fastify leaves alone
const kPayload = Symbol('immich-proxy.payload')

function dispatchToImmich (request: AnyRequest, reply: AnyReply, dispatcher: Dispatcher, queueTimeout: number): void {
  const raw = request.raw
  const exchange = new Exchange(reply)
  const res = reply.raw as ServerResponse
  res.on('timeout', deferClientTimeoutToUpstream)
  res.once('close', exchange.onClientClose)
  // A method Fastify parses no body for (GET, HEAD…) may still carry one: it goes as the
  // preParsing hooks left it, so the body limit counts it too.
  let body = request.body as Readable | undefined
  if (body === undefined && declaresBody(request.headers)) body = (request as AnyRequest & { [kPayload]?: Readable })[kPayload]
  const free = dispatcher.dispatch({
    path: raw.url as string,
    method: raw.method as Dispatcher.HttpMethod,
    headers: upstreamRequestHeaders(request),
    body: body ?? null
  }, exchange)
  // false: the pool is at UPSTREAM_MAX_CONNECTIONS, and this request may be queued
  if (!free) exchange.waitForConnection(queueTimeout)
}

/** Bodies go on as the streams they are, in a scope of its own so the app's parsers stay. */
export async function registerImmichRoutes (fastify: FastifyInstance, dispatcher: Dispatcher, methods: string[], paths: string[], queueTimeout = DEFAULTS.proxyTimeout): Promise<void> {
  await fastify.register(async function immichRoutes (scope) {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (request, payload, done) => { done(null, payload) })
    // registered after the app's own preParsing hooks (the body limit's), so it sees their result
    scope.addHook('preParsing', (request, reply, payload, done) => {
      (request as FastifyRequest & { [kPayload]?: Readable })[kPayload] = payload
      done(null, payload)
    })
    const forward: Forward = (request, reply) => { dispatchToImmich(request, reply, dispatcher, queueTimeout) }
    const handler = (request: FastifyRequest, reply: FastifyReply): void => { takeTurn(request, reply, forward) }
    for (const url of paths) scope.route({ method: methods, url, handler })
  })
}
