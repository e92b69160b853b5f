// `/.well-known/immich` tells the mobile app and the CLI where the API lives. An ACME http-01 setup
// tends to swallow `/.well-known/` (Immich's reverse-proxy docs), so this route is registered on
// its own and always goes to Immich; the access key guard lets GET/HEAD of it through.
import fp from 'fastify-plugin'
import { registerImmichRoutes } from './forward.js'
import { wellKnownDispatcher, type UpstreamOptions } from './upstream.js'
import type { Dispatcher } from 'undici'

export type WellKnownOptions = UpstreamOptions & {
  /** The pool to Immich for this route (ImmichUpstream's `wellKnown`); its owner closes it. Default: one of the plugin's own. */
  dispatcher?: Dispatcher
}

export const WELL_KNOWN_PATH = '/.well-known/immich'

export default fp<WellKnownOptions>(async function wellKnown (fastify, opts) {
  let dispatcher = opts.dispatcher
  if (dispatcher === undefined) {
    const own = wellKnownDispatcher(opts)
    fastify.addHook('onClose', async () => { await own.destroy() })
    dispatcher = own
  }

  await registerImmichRoutes(fastify, dispatcher, ['GET', 'HEAD'], [WELL_KNOWN_PATH], opts.proxyTimeout)
}, { name: 'immich-proxy-well-known', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
