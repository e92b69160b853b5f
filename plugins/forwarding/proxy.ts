// The catch-all, as nginx's `location / { proxy_pass … }`.
import fp from 'fastify-plugin'
import { registerImmichRoutes } from './forward.js'
import { upstreamDispatcher, type UpstreamOptions } from './upstream.js'
import { collectionsAvailable } from './young-collection.js'
import type { Dispatcher } from 'undici'

export type ProxyOptions = UpstreamOptions & {
  /** The pool to Immich, when the app shares one (the access gate asks through it too); its owner closes it. Default: one of the plugin's own. */
  dispatcher?: Dispatcher
}

export default fp<ProxyOptions>(async function proxy (fastify, opts) {
  let dispatcher = opts.dispatcher
  if (dispatcher === undefined) {
    const own = upstreamDispatcher(opts)
    fastify.addHook('onClose', async () => { await own.destroy() })
    dispatcher = own
  }

  // every method Node parses and Fastify routes (WebDAV's among them); CONNECT is not for a path
  const methods = fastify.supportedMethods.filter(method => method !== 'CONNECT')
  await registerImmichRoutes(fastify, dispatcher, methods, ['/', '/*'], opts.proxyTimeout)

  if (!collectionsAvailable()) {
    fastify.log.warn('node runs without --expose-gc: transfers will be slower and use more memory (see docs/design.md, "Memory of transfers")')
  }
}, {
  name: 'immich-proxy-proxy',
  fastify: '5.x',
  dependencies: ['immich-proxy-forwarded-headers', 'immich-proxy-body-limit', 'immich-proxy-websocket']
})
