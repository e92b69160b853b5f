import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { startProxy } from './helper.js'
import { rawUpgrade, SOCKET_IO_HANDSHAKE, startWsUpstream, writeSwitchingProtocols } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

// A tunnel passes a FIN on as a FIN, as a TCP relay should: the side that has finished sending
// can still receive, whichever side finishes first.

async function tunnel (t: Test, onUpstream: (socket: Socket) => void, halfOpenClient = false): Promise<{ client: Socket, received: Buffer[], ended: Promise<unknown> }> {
  const upstream = await startWsUpstream(t, {
    beforeUpgrade: async (req, socket) => {
      writeSwitchingProtocols(req, socket)
      onUpstream(socket)
      return false
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const { head, rest, socket } = await rawUpgrade(t, proxy.port, SOCKET_IO_HANDSHAKE)
  t.match(head, /^HTTP\/1\.1 101 /)
  const received: Buffer[] = [rest]
  // a half-open client keeps sending after the proxy's FIN (net.Socket ends its side otherwise)
  socket.allowHalfOpen = halfOpenClient
  socket.on('data', chunk => received.push(chunk))
  const ended = once(socket, 'end')
  socket.resume()
  return { client: socket, received, ended }
}

t.test('the client finishes first: what Immich sends after seeing its FIN still arrives', async t => {
  const { client, received, ended } = await tunnel(t, socket => {
    const got: Buffer[] = []
    socket.on('data', chunk => got.push(chunk))
    socket.once('end', () => socket.end(`got ${Buffer.concat(got).toString()}; bye`))
  })
  client.end('hello')
  await within(ended, 5000, 'the end of the stream from Immich')
  t.equal(Buffer.concat(received).toString(), 'got hello; bye', 'the answer sent after the half-close arrived whole')
})

t.test('Immich finishes first: what the client sends after seeing its FIN still arrives', async t => {
  const atImmich: Buffer[] = []
  let immichGotEnd: Promise<unknown> = Promise.resolve()
  const { client, received, ended } = await tunnel(t, socket => {
    socket.on('data', chunk => atImmich.push(chunk))
    immichGotEnd = once(socket, 'end')
    socket.end('going away')
  }, true)
  await within(ended, 5000, 'Immich\'s FIN at the client')
  t.equal(Buffer.concat(received).toString(), 'going away', 'Immich\'s last bytes, then its FIN')
  client.end('late words')
  await within(immichGotEnd, 5000, 'the client\'s FIN at Immich')
  t.equal(Buffer.concat(atImmich).toString(), 'late words', 'the client\'s bytes after Immich\'s FIN reached Immich')
})
