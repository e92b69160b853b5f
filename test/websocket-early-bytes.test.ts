import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startProxy } from './helper.js'
import { rawUpgrade, SOCKET_IO_HANDSHAKE, startWsUpstream, writeSwitchingProtocols } from './helpers/websocket.js'
import { waitFor } from './helpers/wait.js'

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
      writeSwitchingProtocols(req, socket)
      socket.on('data', chunk => received.push(chunk))
      return false
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const { head } = await rawUpgrade(t, proxy.port, Buffer.concat([Buffer.from(SOCKET_IO_HANDSHAKE), early]))
  t.match(head, /^HTTP\/1\.1 101 /)
  t.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/)
  await waitFor(() => Buffer.concat(received).length >= early.length, 10_000, 'the early bytes at the upstream')
  t.ok(Buffer.concat(received).equals(early), `all ${early.length} early bytes arrived, in order`)
})
