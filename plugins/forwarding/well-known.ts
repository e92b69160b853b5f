// `/.well-known/immich` tells the mobile app and the CLI where the API lives. An ACME http-01 setup
// tends to swallow `/.well-known/` (Immich's reverse-proxy docs), so this route is registered on
// its own and always goes to Immich; the access key guard lets GET/HEAD of it through.
import fp from 'fastify-plugin'
import { registerImmichRoutes } from './forward.js'
import { upstreamDispatcher, type UpstreamOptions } from './upstream.js'

export type WellKnownOptions = UpstreamOptions

export const WELL_KNOWN_PATH = '/.well-known/immich'

// a small JSON document the apps fetch once: a few connections are plenty, and a flood of it
// cannot take a share of UPSTREAM_MAX_CONNECTIONS
const WELL_KNOWN_MAX_CONNECTIONS = 16

export default fp<WellKnownOptions>(async function wellKnown (fastify, opts) {
  const dispatcher = upstreamDispatcher({
    ...opts,
    upstreamMaxConnections: Math.min(opts.upstreamMaxConnections ?? WELL_KNOWN_MAX_CONNECTIONS, WELL_KNOWN_MAX_CONNECTIONS)
  })
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })

  await registerImmichRoutes(fastify, dispatcher, ['GET', 'HEAD'], [WELL_KNOWN_PATH], opts.proxyTimeout)
}, { name: 'immich-proxy-well-known', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
