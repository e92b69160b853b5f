// `/.well-known/immich` tells the mobile app and the CLI where the API lives. Immich's reverse-
// proxy document warns that an ACME http-01 setup tends to swallow `/.well-known/`, so the route
// is registered on its own, before anything else there, and always goes to Immich.
import fp from 'fastify-plugin'
import httpProxy from '@fastify/http-proxy'
import { httpProxyOptions, upstreamDispatcher, type UpstreamOptions } from './lib/upstream.js'

export type WellKnownOptions = UpstreamOptions

export const WELL_KNOWN_PATH = '/.well-known/immich'

export default fp<WellKnownOptions>(async function wellKnown (fastify, opts) {
  const dispatcher = upstreamDispatcher(opts)
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })

  await fastify.register(httpProxy, {
    ...httpProxyOptions(opts, dispatcher),
    prefix: WELL_KNOWN_PATH,
    rewritePrefix: WELL_KNOWN_PATH,
    routes: ['/'],
    httpMethods: ['GET', 'HEAD']
  })
}, { name: 'immich-proxy-well-known', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
