// nginx `client_max_body_size 50000M`, without nginx's spooling: a declared Content-Length over
// the limit is refused before the handler runs, a chunked body is cut as it crosses the limit.
// (Fastify's own bodyLimit does not apply: the catch-all parser hands the raw stream on.)
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import createError from '@fastify/error'
import { Transform, finished, pipeline, type Readable, type TransformCallback } from 'node:stream'
import { watchEndStream, wholeBody } from './http2-body.js'
import { DEFAULTS } from '../defaults.js'

export interface BodyLimitOptions {
  /** Largest request body in bytes; 0 = no limit. Default 50000 MiB, the reference configs' value. */
  bodyLimit?: number
}

export const BodyTooLargeError = createError('IMMICH_PROXY_BODY_TOO_LARGE', 'Request body is larger than %s bytes', 413)

class ByteCounter extends Transform {
  private seen = 0
  constructor (private readonly limit: number) {
    super()
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) callback(new BodyTooLargeError(this.limit))
    else callback(null, chunk)
  }
}

function noop (): void {}

function counted (payload: Readable, limit: number): Readable {
  const counter = new ByteCounter(limit)
  // pipe() does not pass on the client going away: without this the upstream request would wait
  // for the rest of a body that never comes. A counter closed before its end aborts it.
  payload.once('close', () => { if (!payload.readableEnded) counter.destroy() })
  // a body answered without being read has no reader for the error
  counter.on('error', noop)
  return payload.pipe(counter)
}

export default fp<BodyLimitOptions>(async function bodyLimit (fastify, opts) {
  const limit = opts.bodyLimit ?? DEFAULTS.bodyLimit

  if (fastify.initialConfig.http2 === true) {
    fastify.addHook('onRequest', (request, reply, done) => {
      watchEndStream(request.raw)
      done()
    })
    fastify.addHook('preParsing', (request, reply, payload, done) => {
      const whole = wholeBody(request.raw, payload)
      if (whole === payload || Number(request.headers['content-length']) !== 0) return done(null, whole)
      // Immich takes a declared length of 0 as a complete request: it waits for END_STREAM
      // (nghttp2 resets a stream whose DATA frames exceed the 0)
      finished(whole.resume(), error => { done(error ?? null, payload) })
    })
  }
  if (limit === 0) return

  const declaredOverLimit = (headers: IncomingHttpHeaders): boolean =>
    headers['content-length'] !== undefined && Number(headers['content-length']) > limit

  // Node answers `Expect: 100-continue` itself, inviting a body about to be refused, unless a
  // listener takes the job: then a request over the limit gets only the 413 (Node closes the
  // connection after it). A listener someone else installed keeps the job (two would double-route).
  const server = fastify.server
  if (server.listenerCount('checkContinue') === 0) {
    const checkContinue = (req: IncomingMessage, res: ServerResponse): void => {
      if (!declaredOverLimit(req.headers)) res.writeContinue()
      server.emit('request', req, res)
    }
    server.on('checkContinue', checkContinue)
    fastify.addHook('onClose', async () => { server.off('checkContinue', checkContinue) })
  }

  fastify.addHook('onRequest', (request, reply, done) => {
    if (!declaredOverLimit(request.headers)) return done()
    // Without `Connection: close` Node would read the whole refused body (gigabytes, maybe)
    // before the connection could carry another request; HTTP/2 ends just the stream.
    if (request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    done(new BodyTooLargeError(limit))
  })

  // A declared length needs no counting: Node's HTTP/1.1 parser stops there, nghttp2 resets an
  // HTTP/2 stream that goes past it, and onRequest has compared it with the limit.
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    if (request.headers['content-length'] !== undefined) return done(null, payload)
    // pipeline() for the HTTP/2 stream made above; the client's own stream needs counted()
    done(null, payload === request.raw ? counted(payload, limit) : pipeline(payload, new ByteCounter(limit), noop))
  })
}, { name: 'immich-proxy-body-limit', fastify: '5.x' })
