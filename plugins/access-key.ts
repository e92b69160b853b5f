// The reference "nginx TLS + Access Key" config: `if ($http_x_access_key != "<key>") { return 403; }`.
// Done so that it cannot leak: compared in constant time, stripped before Immich sees it, and
// applied to every request and WebSocket upgrade (both pass through this onRequest hook).
import fp from 'fastify-plugin'
import createError from '@fastify/error'
import { createHash, timingSafeEqual } from 'node:crypto'

export interface AccessKeyOptions {
  /** Accepted keys. Default: none, and then there is no guard at all. */
  accessKeys?: string[]
}

export const AccessKeyRequiredError = createError('IMMICH_PROXY_ACCESS_KEY', 'A valid X-Access-Key header is required', 403)

// Hashing first gives every comparison the same length, so timingSafeEqual never throws and the
// time taken says nothing about the length or prefix of a key.
function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

export default fp<AccessKeyOptions>(async function accessKey (fastify, opts) {
  const keys = (opts.accessKeys ?? []).map(digest)
  if (keys.length === 0) return

  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw.headersDistinct['x-access-key']
    delete request.headers['x-access-key']
    // A repeated header is refused rather than guessed at: proxies in front may join or split it.
    if (raw?.length !== 1) return done(new AccessKeyRequiredError())
    const sent = digest(raw[0])
    let match = false
    for (const key of keys) match = timingSafeEqual(key, sent) || match
    done(match ? undefined : new AccessKeyRequiredError())
  })
}, { name: 'immich-proxy-access-key', fastify: '5.x' })
