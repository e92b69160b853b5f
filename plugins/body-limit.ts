// nginx `client_max_body_size 50000M`, without nginx's spooling: the body streams through and is
// counted on the way. A declared Content-Length over the limit is refused before the handler
// runs, so not a byte reaches Immich; a chunked body is cut the moment it crosses the limit.
// (Fastify's own bodyLimit does not apply: the proxy's catch-all parser hands the raw stream on.)
import fp from 'fastify-plugin'
import createError from '@fastify/error'
import { Transform, type TransformCallback } from 'node:stream'

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

export default fp<BodyLimitOptions>(async function bodyLimit (fastify, opts) {
  const limit = opts.bodyLimit ?? 50000 * 1024 * 1024
  if (limit === 0) return

  fastify.addHook('onRequest', (request, reply, done) => {
    const declared = request.headers['content-length']
    done(declared !== undefined && Number(declared) > limit ? new BodyTooLargeError(limit) : undefined)
  })

  // Only a body without Content-Length needs counting: Node's parser already stops a declared
  // one at its length, and the onRequest check above has compared that length with the limit.
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    if (request.headers['content-length'] !== undefined) return done(null, payload)
    done(null, payload.pipe(new ByteCounter(limit)))
  })
}, { name: 'immich-proxy-body-limit', fastify: '5.x' })
