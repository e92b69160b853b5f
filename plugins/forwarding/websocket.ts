// Upgrade requests go through Fastify's router, as @fastify/websocket does, so the guards run for
// them as for any request; the handler is then swapped for the tunnel (docs/design.md). Other
// offers (curl --http2 sends `Upgrade: h2c` on every plain-http request) are declined, as RFC 9110
// §7.8 allows: Immich's socket.io ends any other upgraded connection.
import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { PendingClient, tunnelUpgrade } from './websocket-tunnel.js'
import { type UpstreamOptions } from './upstream.js'
import type { ImmichServers } from './immich-servers.js'
import { declaresBody } from './hop-by-hop.js'
import { DEFAULTS } from '../defaults.js'

export type WebSocketOptions = UpstreamOptions & {
  /** Several Immich servers (ImmichUpstream's `servers`): each upgrade goes to one in service. Default: `upstream`. */
  servers?: ImmichServers
}

const kUpgrade = Symbol('immich-proxy.upgrade')

interface UpgradeRequest extends IncomingMessage {
  [kUpgrade]?: PendingClient
}

// RFC 6455 §4.1; anything else carrying an Upgrade header is an ordinary request
function isWebSocketHandshake (raw: IncomingMessage): boolean {
  return raw.method === 'GET' && !declaresBody(raw.headers) &&
    String(raw.headers.upgrade).split(',').some(protocol => protocol.trim().toLowerCase() === 'websocket')
}

/** The request head as the client sent it, less the upgrade offer (Upgrade and its Connection token). */
function headWithoutUpgrade (raw: IncomingMessage): Buffer {
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
  const target = { upstream: new URL(opts.upstream), servers: opts.servers, timeout: opts.proxyTimeout ?? DEFAULTS.proxyTimeout }

  const upgraded = new Set<Socket>()

  // A host app using @fastify/websocket (it decorates `websocketServer`) has given it the
  // 'upgrade' event, and it routes every upgrade too: a second listener would answer the socket
  // twice. Checked per upgrade: the host may register it after this plugin.
  const hostRoutesUpgrades = (): boolean => fastify.hasDecorator('websocketServer')

  // Node 24.9+ hands the upgrades its shouldUpgradeCallback refuses to the request handler,
  // bodies intact; re-parsing the socket cannot work there, as Node has not read the body when
  // it emits 'upgrade'. Node 20 has no such hook: the 'upgrade' listener below declines.
  const server = fastify.server as unknown as { shouldUpgradeCallback?: (raw: IncomingMessage) => boolean }
  if (typeof server.shouldUpgradeCallback === 'function') server.shouldUpgradeCallback = isWebSocketHandshake

  function untrack (this: Socket): void {
    upgraded.delete(this)
  }

  function track (socket: Socket): void {
    upgraded.add(socket)
    socket.on('close', untrack)
  }

  function onUpgrade (raw: UpgradeRequest, socket: Socket, head: Buffer): void {
    if (hostRoutesUpgrades()) return
    // Node drops its own error listener before 'upgrade': a reset client must not go uncaught
    socket.on('error', destroyOnError)
    if (!isWebSocketHandshake(raw)) {
      // hand the socket back to Node's HTTP parser (a documented use of 'connection') with the
      // head minus the offer, so the body and anything after it are parsed as ordinary HTTP
      socket.removeListener('error', destroyOnError)
      socket.unshift(Buffer.concat([headWithoutUpgrade(raw), head]))
      fastify.server.emit('connection', socket)
      return
    }
    track(socket)
    raw[kUpgrade] = new PendingClient(socket, head)
    const response = new ServerResponse(raw)
    response.assignSocket(socket as never)
    // An upgrade answered with a plain response ends there: the socket has left Node's HTTP
    // parser. A tunnelled upgrade detaches the socket first, so its response never finishes.
    response.once('finish', () => socket.end())
    fastify.routing(raw, response)
  }
  fastify.server.on('upgrade', onUpgrade)
  // Node's server.close() waits for every socket, and does not track upgraded ones as HTTP
  // connections: an open tunnel would hold shutdown forever. Cut it; socket.io clients reconnect.
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
