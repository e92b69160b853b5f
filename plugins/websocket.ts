// WebSocket forwarding for Immich's socket.io (/api/socket.io, websocket transport).
// Upgrade requests are sent through Fastify's router, as @fastify/websocket does, so the guards
// registered before this plugin (forwarded headers, access key) run for them exactly as for any
// request; the route handler of the proxy is then swapped for the tunnel (lib/websocket-tunnel.ts).
// Why a tunnel and not @fastify/websocket's terminate-and-bridge: see README, "Design notes".
import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { tunnelUpgrade } from './lib/websocket-tunnel.js'
import { DEFAULT_PROXY_TIMEOUT, type UpstreamOptions } from './lib/upstream.js'

export type WebSocketOptions = UpstreamOptions

const kUpgrade = Symbol('immich-proxy.upgrade')

interface UpgradeRequest extends IncomingMessage {
  [kUpgrade]?: { socket: Socket, head: Buffer }
}

export default fp<WebSocketOptions>(async function websocket (fastify, opts) {
  const target = { upstream: new URL(opts.upstream), timeout: opts.proxyTimeout ?? DEFAULT_PROXY_TIMEOUT }

  function onUpgrade (raw: UpgradeRequest, socket: Socket, head: Buffer): void {
    // Node drops its own error listener before emitting 'upgrade'; a reset client must not
    // become an uncaught exception.
    socket.on('error', () => socket.destroy())
    raw[kUpgrade] = { socket, head }
    const response = new ServerResponse(raw)
    response.assignSocket(socket as never)
    // An upgrade answered with a plain response (403 from the guard, 404, Immich's own refusal)
    // ends there: the socket has left Node's HTTP parser and cannot carry a second request.
    // A tunnelled upgrade detaches the socket first, so its response never finishes.
    response.once('finish', () => socket.end())
    fastify.routing(raw, response)
  }
  fastify.server.on('upgrade', onUpgrade)
  fastify.addHook('preClose', (done) => {
    fastify.server.removeListener('upgrade', onUpgrade)
    done()
  })

  fastify.addHook('onRoute', (route) => {
    const handler = route.handler
    route.handler = function (request, reply) {
      const upgrade = (request.raw as UpgradeRequest)[kUpgrade]
      if (upgrade === undefined) return handler.call(this, request, reply)
      tunnelUpgrade(request, reply, upgrade.socket, upgrade.head, target)
    }
  })
}, { name: 'immich-proxy-websocket', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
