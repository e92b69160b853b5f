// WebSocket forwarding for Immich's socket.io (/api/socket.io, websocket transport).
// Upgrade requests are sent through Fastify's router, as @fastify/websocket does, so the guards
// registered before this plugin (forwarded headers, access key) run for them exactly as for any
// request; the route handler of the proxy is then swapped for the tunnel (lib/websocket-tunnel.ts).
// Why a tunnel and not @fastify/websocket's terminate-and-bridge: see docs/design.md.
// Only WebSocket handshakes are tunnelled. Any other offer (curl --http2 asks for `Upgrade: h2c`
// on every plain-http request, uploads included) is declined, as RFC 9110 §7.8 lets a server do,
// and the request goes on as ordinary HTTP: Immich only speaks WebSocket after an upgrade, and
// its socket.io (engine.io) ends any other upgraded connection after a second.
import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { PendingClient, tunnelUpgrade } from './websocket-tunnel.js'
import { type UpstreamOptions } from './upstream.js'
import { declaresBody } from './hop-by-hop.js'
import { DEFAULTS } from '../defaults.js'

export type WebSocketOptions = UpstreamOptions

const kUpgrade = Symbol('immich-proxy.upgrade')

interface UpgradeRequest extends IncomingMessage {
  [kUpgrade]?: PendingClient
}

/**
 * A WebSocket opening handshake: a GET without a body offering `websocket` (RFC 6455 §4.1).
 * Anything else carrying an Upgrade header is an ordinary request with an offer to decline.
 */
function isWebSocketHandshake (raw: IncomingMessage): boolean {
  return raw.method === 'GET' && !declaresBody(raw.headers) &&
    String(raw.headers.upgrade).split(',').some(protocol => protocol.trim().toLowerCase() === 'websocket')
}

/** The request head as the client sent it, less the upgrade offer (Upgrade and its Connection token). */
function headWithoutUpgrade (raw: IncomingMessage): Buffer {
  // method and url are always set on a request that Node's server parsed
  let head = `${raw.method as string} ${raw.url as string} HTTP/${raw.httpVersion}\r\n`
  const fields = raw.rawHeaders
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i].toLowerCase()
    let value = fields[i + 1]
    if (name === 'upgrade') continue
    if (name === 'connection') {
      value = value.split(',').map(token => token.trim()).filter(token => token !== '' && token.toLowerCase() !== 'upgrade').join(', ')
      if (value === '') continue
    }
    head += `${fields[i]}: ${value}\r\n`
  }
  // Node decoded the head as latin1: encoding it back the same way restores the bytes
  return Buffer.from(head + '\r\n', 'latin1')
}

function destroyOnError (this: Socket): void {
  this.destroy()
}

export default fp<WebSocketOptions>(async function websocket (fastify, opts) {
  const target = { upstream: new URL(opts.upstream), timeout: opts.proxyTimeout ?? DEFAULTS.proxyTimeout }

  // every socket that arrived as an upgrade and is still open, handshaking or tunnelled
  const upgraded = new Set<Socket>()

  // A host app that uses @fastify/websocket (it decorates `websocketServer`) has given the
  // server's 'upgrade' event to it, and it sends every upgrade through the router too: a second
  // listener would answer the same socket twice. The tunnel then takes the socket from the
  // routed request. Checked per upgrade: the host app may register it after this plugin.
  const hostRoutesUpgrades = (): boolean => fastify.hasDecorator('websocketServer')

  // Node 24.9+ asks the server which upgrades to take (`shouldUpgradeCallback`, by default every
  // one while an 'upgrade' listener exists) and hands the others to the request handler with
  // their bodies intact; there, declining by re-parsing the socket no longer works, since Node
  // has not read the body when it emits 'upgrade'. Older Node (20) has no such hook: the
  // 'upgrade' listener below declines for it.
  const server = fastify.server as unknown as { shouldUpgradeCallback?: (raw: IncomingMessage) => boolean }
  if (typeof server.shouldUpgradeCallback === 'function') server.shouldUpgradeCallback = isWebSocketHandshake

  // shared listeners, not closures per socket: an open tunnel should hold as little as it can
  function untrack (this: Socket): void {
    upgraded.delete(this)
  }

  function track (socket: Socket): void {
    upgraded.add(socket)
    socket.on('close', untrack)
  }

  function onUpgrade (raw: UpgradeRequest, socket: Socket, head: Buffer): void {
    if (hostRoutesUpgrades()) return
    // Node drops its own error listener before emitting 'upgrade'; a reset client must not
    // become an uncaught exception.
    socket.on('error', destroyOnError)
    if (!isWebSocketHandshake(raw)) {
      // Node stopped parsing at the end of the head and hands over the socket as it is; give
      // it back to Node's HTTP parser (a documented use of 'connection') with the head minus
      // the offer, so the body and anything after it are parsed as ordinary HTTP.
      socket.removeListener('error', destroyOnError)
      socket.unshift(Buffer.concat([headWithoutUpgrade(raw), head]))
      fastify.server.emit('connection', socket)
      return
    }
    track(socket)
    raw[kUpgrade] = new PendingClient(socket, head)
    const response = new ServerResponse(raw)
    response.assignSocket(socket as never)
    // An upgrade answered with a plain response (403 from the guard, 404, Immich's own refusal)
    // ends there: the socket has left Node's HTTP parser and cannot carry a second request.
    // A tunnelled upgrade detaches the socket first, so its response never finishes.
    response.once('finish', () => socket.end())
    fastify.routing(raw, response)
  }
  fastify.server.on('upgrade', onUpgrade)
  // Node's server.close() waits for every socket, and it no longer tracks upgraded ones as HTTP
  // connections, so an open tunnel would hold the shutdown forever. A tunnel carries no HTTP
  // exchange that could be finished first: cut it; socket.io clients reconnect on their own.
  fastify.addHook('preClose', (done) => {
    fastify.server.removeListener('upgrade', onUpgrade)
    for (const socket of upgraded) socket.destroy()
    done()
  })

  fastify.addHook('onRoute', (route) => {
    const handler = route.handler
    route.handler = function (request, reply) {
      const raw = request.raw as UpgradeRequest
      // an upgrade routed by @fastify/websocket arrives with its socket and nothing read ahead
      if (raw[kUpgrade] === undefined && hostRoutesUpgrades() && isWebSocketHandshake(raw)) {
        track(raw.socket)
        raw[kUpgrade] = new PendingClient(raw.socket, Buffer.alloc(0))
      }
      const upgrade = raw[kUpgrade]
      if (upgrade === undefined) return handler.call(this, request, reply)
      tunnelUpgrade(request, reply, upgrade, target)
    }
  })
}, { name: 'immich-proxy-websocket', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
