// Real WebSocket peers for the tunnel tests: an upstream `ws` server standing in for Immich's
// socket.io endpoint, clients that are closed when the test ends, and raw handshakes.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import type { Test } from 'tap'
import WebSocket, { WebSocketServer, type ClientOptions, type ServerOptions } from 'ws'

export interface WsUpstreamOptions {
  /** Passed to the WebSocketServer (handleProtocols, perMessageDeflate, maxPayload, …). */
  server?: Omit<ServerOptions, 'server' | 'noServer' | 'port'>
  /**
   * Runs on every upgrade before the handshake is answered: delay it, or answer it yourself
   * (write a refusal to `socket`) and return false.
   */
  beforeUpgrade?: (req: IncomingMessage, socket: Socket) => Promise<boolean> | boolean
}

export interface WsUpstream {
  server: Server
  wss: WebSocketServer
  port: number
  /** http://127.0.0.1:port, what UPSTREAM_URL gets. */
  url: string
  /** Every upgrade request received, in order. */
  upgrades: IncomingMessage[]
  /** TCP connections to this server that are still open (upgraded ones included). */
  sockets: Set<Socket>
  /** The next socket the upstream accepts. */
  nextConnection: () => Promise<[WebSocket, IncomingMessage]>
}

/** Sends every message back with its text/binary flag. */
export function echo (ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
}

/** A `ws` server on an http server on 127.0.0.1:0; every socket is closed when the test ends. */
export async function startWsUpstream (t: Test, opts: WsUpstreamOptions = {}): Promise<WsUpstream> {
  const server = createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not a WebSocket endpoint')
  })
  const wss = new WebSocketServer({ ...opts.server, noServer: true })
  const upgrades: IncomingMessage[] = []
  const sockets = new Set<Socket>()
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  async function accept (req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    if (opts.beforeUpgrade !== undefined && !(await opts.beforeUpgrade(req, socket))) return
    if (socket.destroyed) return
    wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req))
  }
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    upgrades.push(req)
    socket.on('error', () => socket.destroy())
    accept(req, socket, head).catch(() => socket.destroy())
  })
  wss.on('connection', echo)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const ws of wss.clients) ws.terminate()
    for (const socket of sockets) socket.destroy()
    wss.close()
    await new Promise<void>(resolve => server.close(() => resolve()))
  })
  const port = (server.address() as AddressInfo).port
  return {
    server,
    wss,
    port,
    url: `http://127.0.0.1:${port}`,
    upgrades,
    sockets,
    nextConnection: async () => await once(wss, 'connection') as [WebSocket, IncomingMessage]
  }
}

/** A `ws` client, terminated when the test ends; resolves once it is open. */
export async function openClient (t: Test, url: string, protocols: string[] = [], opts: ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, opts)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  return ws
}

/** The code and reason of the next 'close' event. */
export async function closeOf (ws: WebSocket): Promise<{ code: number, reason: string }> {
  const [code, reason] = await once(ws, 'close') as [number, Buffer]
  return { code, reason: reason.toString() }
}

/** A socket.io WebSocket handshake as a browser sends it, head only, for rawUpgrade. */
export const SOCKET_IO_HANDSHAKE = [
  'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1',
  'Host: immich.test',
  'Upgrade: websocket',
  'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version: 13',
  '', ''
].join('\r\n')

/** Accepts `req` by hand on its raw socket, as an upstream taking bytes rather than frames does (RFC 6455 §4.2.2). */
export function writeSwitchingProtocols (req: IncomingMessage, socket: Socket): void {
  const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
}

/**
 * Writes a hand-made request head on a fresh TCP connection (for targets and headers a client
 * library would normalise) and resolves with the response head once its blank line has
 * arrived; the socket stays open, with any bytes after the head in `rest`, and is destroyed
 * when the test ends.
 */
export async function rawUpgrade (t: Test, port: number, request: string | Buffer): Promise<{ head: string, rest: Buffer, socket: Socket }> {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request)
  let received = Buffer.alloc(0)
  return await new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk])
      const end = received.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.removeListener('data', onData)
      socket.pause()
      resolve({ head: received.subarray(0, end).toString('latin1'), rest: received.subarray(end + 4), socket })
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('close', () => reject(new Error(`connection closed after ${received.length} bytes: ${received.toString('latin1')}`)))
  })
}

/** A port nothing listens on: bound to 127.0.0.1:0, then released. */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}
