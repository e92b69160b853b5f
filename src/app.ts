// The whole proxy as one Fastify plugin. The order below is the request's path through it
// (shared/DESIGN.md): each plugin's hooks run in this order for every request and upgrade.
import type { FastifyPluginAsync } from 'fastify'
import { METHODS } from 'node:http'
import type { Config } from './config.js'
import underPressure from '@fastify/under-pressure'
import tls from '../plugins/tls.js'
import forwardedHeaders from '../plugins/forwarded-headers.js'
import accessKey from '../plugins/access-key.js'
import bodyLimit from '../plugins/body-limit.js'
import wellKnown from '../plugins/well-known.js'
import websocket from '../plugins/websocket.js'
import proxy from '../plugins/proxy.js'

export type AppOptions = Pick<Config, 'upstream' | 'bodyLimit' | 'proxyTimeout' | 'trustProxy' | 'accessKeys'>

const app: FastifyPluginAsync<AppOptions> = async (fastify, opts) => {
  // "every method reaches Immich": Fastify 5 routes only the common methods unless told, and
  // Node parses more (WebDAV and others); CONNECT is not a request for a path.
  for (const method of METHODS) {
    if (method !== 'CONNECT' && !fastify.supportedMethods.includes(method)) fastify.addHttpMethod(method, { hasBody: true })
  }
  const upstream = { upstream: opts.upstream, proxyTimeout: opts.proxyTimeout }
  // Load shedding: a new request gets 503 + Retry-After while the event loop lags by more than a
  // second; requests and tunnels already running are untouched. No status route: every path on
  // this host belongs to Immich.
  await fastify.register(underPressure, { maxEventLoopDelay: 1000, retryAfter: 10, exposeStatusRoute: false })
  await fastify.register(tls)
  await fastify.register(forwardedHeaders, { trustProxy: opts.trustProxy })
  await fastify.register(accessKey, { accessKeys: opts.accessKeys })
  await fastify.register(bodyLimit, { bodyLimit: opts.bodyLimit })
  await fastify.register(wellKnown, upstream)
  await fastify.register(websocket, upstream)
  await fastify.register(proxy, upstream)
}

export default app
