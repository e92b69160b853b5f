// Pipelined HTTP/1.1 requests are answered in order (RFC 9112 §9.3.2): forwarding them at once
// opens one connection to Immich per request and holds the answers until their turn. So they go
// one at a time per client connection, as nginx reads the next request only after answering.
import type { FastifyReply, FastifyRequest, RawServerBase, RouteGenericInterface } from 'fastify'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>
type AnyReply = FastifyReply<RouteGenericInterface, RawServerBase>
export type Forward = (request: AnyRequest, reply: AnyReply) => void

interface Waiting {
  request: AnyRequest
  reply: AnyReply
  forward: Forward
}

// Requests that may wait before the connection stops being read; each holds its request,
// response and Fastify objects. Node parses every request in a read it has begun, so a few more
// may queue.
const MOST_WAITING = 32

// absent: none of the connection's requests is being forwarded; null: one is and none waits;
// an array: one is and these wait, in order
const kTurns = Symbol('immich-proxy.turns')
const kHeld = Symbol('immich-proxy.held')
// `_paused` and `parser` are internals of Node's HTTP server (see hold())
type TurnTaking = Socket & {
  [kTurns]?: Waiting[] | null
  [kHeld]?: boolean
  encrypted?: boolean
  _paused?: boolean
  parser?: { resume: () => void } | null
}
// Node lets go of `res.socket` and `req.socket` before the response closes
const kConnection = Symbol('immich-proxy.connection')
type InTurn = ServerResponse & { [kConnection]?: TurnTaking }

/**
 * Forwards the request now, or once every earlier request on its HTTP/1.x connection has had its
 * response closed. A waiting request is not read: its body stays in the socket. HTTP/2 streams go
 * at once; the session's stream limit bounds them.
 */
export function takeTurn (request: AnyRequest, reply: AnyReply, forward: Forward): void {
  if (request.raw.httpVersionMajor !== 1) {
    forward(request, reply)
    return
  }
  const socket = request.raw.socket as TurnTaking
  const turns = socket[kTurns]
  if (turns === undefined) {
    socket[kTurns] = null
    // a throw goes to Fastify, whose error answer closes the response and so ends the turn
    forwardInTurn(socket, request, reply, forward)
    return
  }
  const waiting = { request, reply, forward }
  if (turns === null) {
    socket[kTurns] = [waiting]
  } else if (turns.push(waiting) >= MOST_WAITING && socket[kHeld] !== true) {
    // as Node does when answers fill its outgoing buffer, which answers not yet begun never do
    hold(socket)
  }
}

function stayPaused (this: Socket): Socket {
  return this
}

/**
 * Node's HTTP server resumes a socket after each request it parses and each answer it sends
 * unless `_paused` is set, and then pauses its parser too. A TLS socket still hands the parser
 * what it decrypted, which a paused parser refuses (a 400): there the parser is left running and
 * the socket's own resume() does nothing while held.
 */
function hold (socket: TurnTaking): void {
  socket[kHeld] = true
  if (socket.encrypted === true) {
    socket.resume = stayPaused
    socket.pause()
  } else {
    // Node clears `_paused` and resumes whenever an answer's bytes leave with little to send
    socket.on('resume', keepHeld)
    keepHeld.call(socket)
  }
}

function keepHeld (this: TurnTaking): void {
  this._paused = true
  this.pause()
}

function forwardInTurn (socket: TurnTaking, request: AnyRequest, reply: AnyReply, forward: Forward): void {
  const res = reply.raw as InTurn
  res[kConnection] = socket
  // `on`, not `once`: a response closes once, and `once` would wrap the listener per request
  res.on('close', turnEnded)
  forward(request, reply)
}

function turnEnded (this: InTurn): void {
  // after undici's setImmediate that frees the connection to Immich, so the next request reuses it
  setImmediate(nextTurn, this[kConnection] as TurnTaking)
}

function nextTurn (socket: TurnTaking): void {
  const turns = socket[kTurns]
  socket[kTurns] = undefined
  if (turns === null || turns === undefined || socket.destroyed) return
  for (let waiting = turns.shift(); waiting !== undefined; waiting = turns.shift()) {
    if (waiting.reply.raw.destroyed) continue
    socket[kTurns] = turns
    if (socket[kHeld] === true && turns.length < MOST_WAITING) release(socket)
    try {
      forwardInTurn(socket, waiting.request, waiting.reply, waiting.forward)
    } catch (error) {
      // outside Fastify's handler here: its error answer closes the response, which ends the turn
      waiting.reply.send(error)
    }
    return
  }
  if (socket[kHeld] === true) release(socket)
}

function release (socket: TurnTaking): void {
  socket[kHeld] = false
  if (socket.encrypted === true) {
    delete (socket as Partial<Socket>).resume
  } else {
    socket.off('resume', keepHeld)
    socket._paused = false
    socket.parser?.resume()
  }
  socket.resume()
}
