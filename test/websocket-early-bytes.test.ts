import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { startProxy } from './helper.js'
import { rawUpgrade, startWsUpstream, waitFor } from './helpers/websocket.js'

// A client may write right after its handshake instead of waiting for the 101 (frames
// pipelined behind the request). Those bytes must reach Immich after the 101, in order, however
// many there are: the proxy keeps some while Immich is still answering and leaves the rest in
// the socket until the tunnel is joined.
t.test('bytes a client sends before its 101 reach Immich in order', async t => {
  const early = randomBytes(300 * 1024)
  const received: Buffer[] = []
  const upstream = await startWsUpstream(t, {
    beforeUpgrade: async (req, socket) => {
      // Immich takes its time; the client's bytes pile up at the proxy meanwhile
      await new Promise(resolve => setTimeout(resolve, 300))
      const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      socket.on('data', chunk => received.push(chunk))
      return false
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const handshake = [
    'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1',
    'Host: immich.test',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    '', ''
  ].join('\r\n')
  const { head } = await rawUpgrade(t, proxy.port, Buffer.concat([Buffer.from(handshake), early]))
  t.match(head, /^HTTP\/1\.1 101 /)
  t.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/)
  await waitFor(() => Buffer.concat(received).length >= early.length, 10_000, 'the early bytes at the upstream')
  t.ok(Buffer.concat(received).equals(early), `all ${early.length} early bytes arrived, in order`)
})
