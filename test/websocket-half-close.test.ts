import t from 'tap'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { startProxy } from './helper.js'
import { rawUpgrade, startWsUpstream, within } from './helpers/websocket.js'

// A tunnel passes a FIN on as a FIN, as a TCP relay should: the side that has finished sending
// can still receive. A client that shuts its write side (a half-close) still gets what Immich
// sends after seeing that FIN, and then the end of the stream.
t.test('a half-close travels through the tunnel and the other direction stays open', async t => {
  const upstream = await startWsUpstream(t, {
    beforeUpgrade: async (req, socket) => {
      const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      const received: Buffer[] = []
      socket.on('data', chunk => received.push(chunk))
      // Immich's side sees the client's FIN, then answers what it got and finishes too
      socket.once('end', () => socket.end(`got ${Buffer.concat(received).toString()}; bye`))
      return false
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const { head, rest, socket } = await rawUpgrade(t, proxy.port, [
    'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1',
    'Host: immich.test',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    '', ''
  ].join('\r\n'))
  t.match(head, /^HTTP\/1\.1 101 /)
  const received: Buffer[] = [rest]
  socket.on('data', chunk => received.push(chunk))
  socket.resume()
  socket.end('hello')
  await within(once(socket, 'end'), 5000, 'the end of the stream from Immich')
  t.equal(Buffer.concat(received).toString(), 'got hello; bye', 'the answer sent after the half-close arrived whole')
})
