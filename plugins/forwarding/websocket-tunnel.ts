// A WebSocket forwarded as a byte tunnel, as nginx, Caddy and node-http-proxy do: nothing is
// parsed after the handshake, so subprotocols, extensions, ping/pong, fragmentation and close
// codes (even a close without one) pass unchanged, and TCP flow control is the backpressure.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import { websocketClosed, websocketOpened, type WebSocketClosed } from '../observability/events.js'
import { redactedPath } from '../observability/redact.js'
import { stripHopByHop } from './hop-by-hop.js'
import { UnrelayableAnswerError, clientResponseHeaders, relayableStatus, sendUpstreamError } from './upstream.js'
import { NoImmichServerError, unreached, type ImmichServer, type ImmichServers } from './immich-servers.js'

export interface TunnelTarget {
  upstream: URL
  /** Several Immich servers to choose from (each upgrade goes to one in service); else `upstream`. */
  servers?: ImmichServers
  /** Idle limit in ms for the handshake and for the open tunnel (nginx proxy_read_timeout). */
  timeout: number
}

class HandshakeTimeoutError extends Error {
  code = 'UND_ERR_HEADERS_TIMEOUT'
}

/** Header block of Immich's 101, written as received (same names, order and repeats). */
function switchingProtocolsHead (response: IncomingMessage): string {
  let head = `HTTP/1.1 101 ${response.statusMessage ?? 'Switching Protocols'}\r\n`
  const raw = response.rawHeaders
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`
  return head + '\r\n'
}

function upgradeRequestHeaders (request: FastifyRequest): Record<string, string | string[] | undefined> {
  // The usual hop-by-hop rules, except that Connection: Upgrade and Upgrade are the request
  // itself here and go on to Immich.
  const headers: Record<string, string | string[] | undefined> = stripHopByHop({ ...request.headers })
  headers.connection = 'Upgrade'
  headers.upgrade = request.headers.upgrade
  return Object.assign(headers, request.forwardedHeaders)
}

// A WebSocket client sends nothing before its 101 (RFC 6455 §4.1); bytes sent early are kept
// for Immich up to this amount, then the client is not read until the tunnel is joined.
const EARLY_BYTES_LIMIT = 64 * 1024

/**
 * Node stops reading an upgraded socket, so a client leaving with a FIN would go unnoticed and its
 * upgrade to Immich stay open; reading here sees the FIN and keeps early bytes for Immich.
 */
export class PendingClient {
  private readonly early: Buffer[] = []
  private earlyLength = 0

  constructor (readonly socket: Socket, head: Buffer) {
    this.onData(head)
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (chunk.length === 0) return
    this.early.push(chunk)
    this.earlyLength += chunk.length
    if (this.earlyLength > EARLY_BYTES_LIMIT) this.socket.pause()
  }

  private readonly onEnd = (): void => { this.socket.destroy() }

  release (): Buffer {
    this.socket.removeListener('data', this.onData)
    this.socket.removeListener('end', this.onEnd)
    this.socket.pause()
    return Buffer.concat(this.early, this.earlyLength)
  }
}

// One open tunnel per Immich tab or app, idle nearly all the time: it keeps only its two sockets
// and one small record, and module-level listeners find the peer through the record, where two
// pipe() calls would give every tunnel its own closures (docs/design.md).
const kTunnel = Symbol('immich-proxy.tunnel')
type TunnelSocket = Socket & { [kTunnel]?: Tunnel }

function peerOf (socket: TunnelSocket): Socket {
  const tunnel = socket[kTunnel] as Tunnel
  return socket === tunnel.client ? tunnel.upstream : tunnel.client
}

// TCP flow control is the backpressure, as with pipe(): a full receiver pauses its sender
function relay (this: TunnelSocket, chunk: Buffer): void {
  if (!peerOf(this).write(chunk)) this.pause()
}

function resumePeer (this: TunnelSocket): void {
  peerOf(this).resume()
}

// a FIN passed on as a FIN: the side done sending may still receive (allowHalfOpen, in open())
function endPeer (this: TunnelSocket): void {
  peerOf(this).end()
}

// the error ends the socket with 'close' (hadError), and the tunnel with it
function ignoreError (): void {}

// idle past PROXY_TIMEOUT, in either direction (nginx's proxy_read_timeout): both sides are cut
function cutTunnel (this: TunnelSocket): void {
  (this[kTunnel] as Tunnel).cut()
}

function socketClosed (this: TunnelSocket, hadError: boolean): void {
  (this[kTunnel] as Tunnel).closed(this, hadError)
}

class Tunnel {
  private readonly opened = process.hrtime.bigint()
  private readonly readAtOpen: number
  private readonly writtenAtOpen: number
  private readonly log: FastifyRequest['log']
  private readonly reqId: string
  private readonly method: string
  private readonly path: string
  private readonly realIp: string
  private stillOpen = 2

  constructor (request: FastifyRequest, readonly client: TunnelSocket, readonly upstream: TunnelSocket, private readonly done?: () => void) {
    this.readAtOpen = client.bytesRead
    this.writtenAtOpen = client.bytesWritten
    // the server's logger, not request.log: that child logger is ~1 kB kept per tunnel (an
    // app's requestIdLogLabel or childLoggerFactory bindings do not reach this line)
    this.log = request.server.log
    this.reqId = request.id
    this.method = request.method
    this.path = redactedPath(request.url)
    this.realIp = request.forwardedHeaders['x-real-ip']
  }

  open (timeout: number): void {
    if (websocketOpened.hasSubscribers) websocketOpened.publish({})
    for (const socket of [this.client, this.upstream]) {
      socket[kTunnel] = this
      socket.allowHalfOpen = true
      socket.setNoDelay(true)
      socket.on('data', relay)
      socket.on('drain', resumePeer)
      socket.on('end', endPeer)
      socket.on('error', ignoreError)
      socket.on('close', socketClosed)
      if (timeout > 0) {
        socket.setTimeout(timeout)
        socket.on('timeout', cutTunnel)
      }
    }
    // as pipe() starts: a receiver still full (the early bytes written to Immich) holds its sender
    for (const socket of [this.client, this.upstream]) {
      if (!peerOf(socket).writableNeedDrain) socket.resume()
    }
  }

  cut (): void {
    this.client.destroy()
    this.upstream.destroy()
  }

  /**
   * A side that closed cleanly has said all it had to: its peer still gets what is queued for it
   * (the close frame), then the end. After an error the peer is cut.
   */
  closed (socket: TunnelSocket, hadError: boolean): void {
    const peer = peerOf(socket)
    if (hadError) peer.destroy()
    else peer.destroySoon()
    if (--this.stillOpen === 0) this.report()
  }

  private report (): void {
    this.done?.()
    const report: WebSocketClosed = {
      durationMs: Number(process.hrtime.bigint() - this.opened) / 1e6,
      bytesFromClient: this.client.bytesRead - this.readAtOpen,
      bytesToClient: this.client.bytesWritten - this.writtenAtOpen
    }
    if (websocketClosed.hasSubscribers) websocketClosed.publish(report)
    this.log.info({
      reqId: this.reqId,
      method: this.method,
      path: this.path,
      status: 101,
      bytesIn: report.bytesFromClient,
      bytesOut: report.bytesToClient,
      durationMs: Math.round(report.durationMs),
      client: this.realIp
    }, 'websocket')
  }
}

/**
 * On 101 the reply is hijacked and the sockets joined; any other answer is relayed as a normal
 * response; a failure answers 502/504, so the client never sees a 101 for a dead upstream.
 */
export function tunnelUpgrade (request: FastifyRequest, reply: FastifyReply, client: PendingClient, target: TunnelTarget, tried?: ImmichServer): void {
  const socket = client.socket
  // gone while the guards ran: nothing to dial for
  if (socket.destroyed) return
  let server: ImmichServer | undefined
  if (target.servers !== undefined) {
    server = target.servers.pick(tried)
    if (server === undefined) {
      sendUpstreamError(reply, new NoImmichServerError())
      return
    }
  }
  const upstream = server?.url ?? target.upstream
  // the server counts the upgrade, then the tunnel, until either ends
  const done = server?.begin()
  const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest
  const upstreamRequest = send({
    protocol: upstream.protocol,
    hostname: upstream.hostname,
    port: upstream.port,
    method: request.raw.method,
    path: request.raw.url,
    headers: upgradeRequestHeaders(request),
    agent: false,
    timeout: target.timeout
  })
  let connected = false
  upstreamRequest.once('socket', upstreamSocket => upstreamSocket.once('connect', () => { connected = true }))

  const abandon = (): void => { upstreamRequest.destroy() }
  socket.once('close', abandon)

  upstreamRequest.once('timeout', () => upstreamRequest.destroy(new HandshakeTimeoutError('upgrade handshake timed out')))
  // `on`, not `once`: a socket error after a refusal's headers is reported here too
  upstreamRequest.on('error', error => {
    done?.()
    socket.removeListener('close', abandon)
    if (reply.sent || socket.destroyed) return
    // a server not reached was sent nothing: the upgrade goes once to another
    const code = connected ? undefined : unreached(error)
    if (server !== undefined && target.servers !== undefined && code !== undefined) {
      target.servers.takeOut(server, code)
      if (tried === undefined && target.servers.balanced) {
        tunnelUpgrade(request, reply, client, target, server)
        return
      }
    }
    sendUpstreamError(reply, error)
  })

  upstreamRequest.once('upgrade', (response, upstreamSocket, upstreamHead) => {
    socket.removeListener('close', abandon)
    upstreamRequest.setTimeout(0)
    if (socket.destroyed) {
      done?.()
      upstreamSocket.destroy()
      return
    }
    const early = client.release()
    reply.hijack()
    reply.raw.detachSocket(socket as never)
    socket.write(switchingProtocolsHead(response))
    if (upstreamHead.length > 0) socket.write(upstreamHead)
    if (early.length > 0) upstreamSocket.write(early)
    new Tunnel(request, socket, upstreamSocket, done).open(target.timeout)
  })

  upstreamRequest.once('response', response => {
    socket.removeListener('close', abandon)
    upstreamRequest.setTimeout(0)
    if (done !== undefined) response.once('close', done)
    const statusCode = response.statusCode ?? 0
    // reply.code() would throw inside this event, where nothing catches it
    if (!relayableStatus(statusCode)) {
      response.destroy()
      sendUpstreamError(reply, new UnrelayableAnswerError(statusCode))
      return
    }
    reply.code(statusCode).headers(clientResponseHeaders(response.headers)).send(response)
  })

  upstreamRequest.end()
}
