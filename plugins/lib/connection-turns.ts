// Pipelined HTTP/1.1 requests are answered in the order they came (RFC 9112 §9.3.2), so
// forwarding them all at once only opens one connection to Immich per request and holds the
// answers in memory until their turn. They are forwarded one at a time per client connection,
// as nginx reads the next request only once it has answered the one before.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'

// the turns still to come on a connection; present while one of its requests is being forwarded
const kTurns = Symbol('immich-proxy.turns')
type TurnTaking = Socket & { [kTurns]?: Array<() => void> }

function nextTurn (socket: TurnTaking): void {
  const turn = socket[kTurns]?.shift()
  if (turn === undefined) socket[kTurns] = undefined
  else turn()
}

/**
 * Runs `forward` now, or once every request before it on the same HTTP/1.x connection has had
 * its answer handed over (its response closed: finished or cut). A request waiting its turn
 * is not read: its body stays in the socket, as the request before it has been read whole
 * (Node parses the next request only after the previous body). HTTP/2 streams go at once; the
 * session's stream limit bounds them.
 */
export function takeTurn (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, forward: () => void): void {
  if (req.httpVersionMajor !== 1) {
    forward()
    return
  }
  const socket = req.socket as TurnTaking
  const turn = (): void => {
    // a client that left while its request waited: nothing to forward
    if (res.destroyed || socket.destroyed) {
      nextTurn(socket)
      return
    }
    // after undici's own setImmediate that frees the connection to Immich, so the next
    // request reuses it rather than opening another
    res.once('close', () => { setImmediate(nextTurn, socket) })
    forward()
  }
  const waiting = socket[kTurns]
  if (waiting === undefined) {
    socket[kTurns] = []
    turn()
  } else {
    waiting.push(turn)
  }
}
