import t from 'tap'
import { once } from 'node:events'
import type WebSocket from 'ws'
import { startProxy } from './helper.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'

t.test('permessage-deflate is negotiated end to end and a 1 MB message round-trips', async t => {
  const upstream = await startWsUpstream(t, { server: { perMessageDeflate: true } })
  const proxy = await startProxy(t, upstream.url)
  const [[upstreamSide], client] = await Promise.all([
    upstream.nextConnection(),
    openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, [], { perMessageDeflate: true })
  ])
  t.match(upstream.upgrades[0].headers['sec-websocket-extensions'], /^permessage-deflate/, 'the client\'s offer reaches Immich')
  t.match(client.extensions, /^permessage-deflate/, 'the client has the extension')
  t.equal(upstreamSide.extensions, client.extensions, 'both ends agree on its parameters')

  // one timeline page of asset ids: repetitive, like Immich's JSON events
  const message = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ id: `asset-${i}`, type: 'IMAGE' }))).padEnd(1024 * 1024, ' ')
  const socket = (upstreamSide as WebSocket & { _socket: { bytesRead: number } })._socket
  const before = socket.bytesRead
  client.send(message)
  const [echoed, isBinary] = await once(client, 'message') as [Buffer, boolean]
  t.equal(isBinary, false)
  t.equal(echoed.length, message.length)
  t.ok(echoed.toString() === message, 'the same text comes back')
  const onTheWire = socket.bytesRead - before
  t.ok(onTheWire < message.length / 4, `compressed frames crossed the tunnel (${onTheWire} bytes for ${message.length})`)
})
