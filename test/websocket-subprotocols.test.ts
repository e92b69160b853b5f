import t from 'tap'
import { startProxy } from './helper.js'
import { openClient, rawUpgrade, SOCKET_IO_HANDSHAKE, startWsUpstream } from './helpers/websocket.js'

t.test('every offered subprotocol reaches Immich and the client gets the one it chose', async t => {
  const offered: string[][] = []
  const upstream = await startWsUpstream(t, {
    server: {
      handleProtocols: protocols => {
        offered.push([...protocols])
        return 'b'
      }
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const [connection] = await Promise.all([
    upstream.nextConnection(),
    openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, ['a', 'b', 'c'])
      .then(ws => t.equal(ws.protocol, 'b', 'the client sees the upstream\'s choice'))
  ])
  t.same(offered, [['a', 'b', 'c']], 'all three offered to the upstream, in order')
  t.equal(upstream.upgrades[0].headers['sec-websocket-protocol'], 'a,b,c', 'the header as the client wrote it')
  t.equal(connection[0].protocol, 'b')
})

t.test('subprotocols offered on separate header lines all arrive', async t => {
  const offered: string[][] = []
  const upstream = await startWsUpstream(t, {
    server: {
      handleProtocols: protocols => {
        offered.push([...protocols])
        return 'chat.v2'
      }
    }
  })
  const proxy = await startProxy(t, upstream.url)
  // the offer in two header lines, the second listing two protocols
  const { head } = await rawUpgrade(t, proxy.port, SOCKET_IO_HANDSHAKE.replace(/\r\n\r\n$/, '\r\nSec-WebSocket-Protocol: chat.v1\r\nSec-WebSocket-Protocol: chat.v2, chat.v3\r\n\r\n'))
  t.match(head, /^HTTP\/1\.1 101 /)
  t.match(head, /\r\nSec-WebSocket-Protocol: chat\.v2(\r\n|$)/i)
  t.same(offered, [['chat.v1', 'chat.v2', 'chat.v3']])
})
