// The catch-all: every method on every path goes to Immich (nginx `location / { proxy_pass … }`),
// bodies streamed both ways by @fastify/http-proxy over undici.
import fp from 'fastify-plugin'
import httpProxy from '@fastify/http-proxy'
import { httpProxyOptions, upstreamDispatcher, type UpstreamOptions } from './lib/upstream.js'

export type ProxyOptions = UpstreamOptions

export default fp<ProxyOptions>(async function proxy (fastify, opts) {
  const dispatcher = upstreamDispatcher(opts)
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })

  // every method Node parses and Fastify routes, not only http-proxy's default seven
  const methods = fastify.supportedMethods.filter(method => method !== 'CONNECT')
  // Fastify's own text/plain parser would read such a body whole (capped at its 1 MiB bodyLimit,
  // whatever BODY_LIMIT says) and re-encode it as UTF-8; http-proxy replaces only the JSON and
  // catch-all parsers. Without it, text/plain streams through the catch-all like any body.
  fastify.removeContentTypeParser('text/plain')
  await fastify.register(httpProxy, { ...httpProxyOptions(opts, dispatcher), httpMethods: methods })
}, {
  name: 'immich-proxy-proxy',
  fastify: '5.x',
  dependencies: ['immich-proxy-forwarded-headers', 'immich-proxy-body-limit', 'immich-proxy-websocket']
})
