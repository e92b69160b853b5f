// Pipelined HTTP/1.1 requests are answered in the order they came (RFC 9112 §9.3.2), so
// forwarding them all at once only opens one connection to Immich per request and holds the
// answers in memory until their turn. They are forwarded one at a time per client connection,
// as nginx reads the next request only once it has answered the one before.
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

// Requests a connection may have waiting behind the one being forwarded before it is no longer
// read. Node parses every request in a read it has begun, so a few more may queue; each holds
// its request, response and Fastify objects until its turn.
const MOST_WAITING = 32

// absent: none of the connection's requests is being forwarded; null: one is and none waits;
// an array: one is and these wait, in order
const kTurns = Symbol('immich-proxy.turns')
// set while the connection is not read because its queue is full
const kHeld = Symbol('immich-proxy.held')
// `_paused` and `parser` are Node's own (lib/_http_server.js): its HTTP server resumes a paused
// socket after every request it parses unless `_paused` is set, and pauses the parser then
type TurnTaking = Socket & {
  [kTurns]?: Waiting[] | null
  [kHeld]?: boolean
  encrypted?: boolean
  _paused?: boolean
  parser?: { resume: () => void } | null
}
// the connection of the response holding its turn (Node lets go of `res.socket` and `req.socket`
// before the response closes)
const kConnection = Symbol('immich-proxy.connection')
type InTurn = ServerResponse & { [kConnection]?: TurnTaking }

/**
 * Forwards the request now, or once every request before it on the same HTTP/1.x connection has
 * had its answer handed over (its response closed: finished or cut). A request waiting its turn
 * is not read: its body stays in the socket, as the request before it has been read whole (Node
 * parses the next request only after the previous body). HTTP/2 streams go at once; the
 * session's stream limit bounds them.
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
    // as Node holds a connection whose answers fill its outgoing buffer, which answers not yet
    // begun never do
    hold(socket)
  }
}

function stayPaused (this: Socket): Socket {
  return this
}

/**
 * Stops reading the connection, as Node does while its answers fill the outgoing buffer: Node's
 * HTTP server resumes a socket after each request it parses and each answer it sends, unless
 * `_paused` says otherwise, and then pauses its parser too. A TLS socket still hands the parser
 * what it has decrypted, which a paused parser refuses (the connection would end in a 400): there
 * the parser is left running and the socket's own resume() does nothing while held.
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
  // after undici's own setImmediate that frees the connection to Immich, so the next request
  // reuses it rather than opening another
  setImmediate(nextTurn, this[kConnection] as TurnTaking)
}

function nextTurn (socket: TurnTaking): void {
  const turns = socket[kTurns]
  socket[kTurns] = undefined
  // a closed connection drops every request still waiting: there is no one to answer
  if (turns === null || turns === undefined || socket.destroyed) return
  // a loop, not a call per skipped request, however many have gone
  for (let waiting = turns.shift(); waiting !== undefined; waiting = turns.shift()) {
    // a request whose answer was cut while it waited (its stream destroyed) has nothing to forward
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

/** Reads the connection again, as Node does once its outgoing buffer drains. */
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
