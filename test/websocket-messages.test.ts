import t from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { startProxy } from './helper.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'

const path = '/api/socket.io/?EIO=4&transport=websocket'

t.test('text and a 5 MB binary message pass unchanged both ways', async t => {
  const upstream = await startWsUpstream(t, { server: { maxPayload: 16 * 1024 * 1024 } })
  const proxy = await startProxy(t, upstream.url)
  const [[upstreamSide], client] = await Promise.all([
    upstream.nextConnection(),
    openClient(t, `ws://127.0.0.1:${proxy.port}${path}`)
  ])
  const received: Array<[Buffer, boolean]> = []
  upstreamSide.on('message', (data: Buffer, isBinary) => received.push([data, isBinary]))

  const text = '42["on_upload_success",{"id":"héllo 👋"}]'
  client.send(text)
  const [echoedText, textIsBinary] = await once(client, 'message') as [Buffer, boolean]
  t.equal(echoedText.toString(), text)
  t.equal(textIsBinary, false, 'a text frame stays text')

  const binary = randomBytes(5 * 1024 * 1024)
  client.send(binary)
  const [echoedBinary, binaryIsBinary] = await once(client, 'message') as [Buffer, boolean]
  t.equal(binaryIsBinary, true, 'a binary frame stays binary')
  t.equal(echoedBinary.length, binary.length)
  t.ok(echoedBinary.equals(binary), 'the 5 MB come back byte for byte')

  t.equal(received.length, 2, 'the upstream got exactly two messages')
  t.equal(received[0][0].toString(), text)
  t.equal(received[1][0].length, binary.length, 'one 5 MB message, not pieces of it')
  t.ok(received[1][0].equals(binary))
})

t.test('ping and pong pass both ways with their payloads', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const [[upstreamSide], client] = await Promise.all([
    upstream.nextConnection(),
    openClient(t, `ws://127.0.0.1:${proxy.port}${path}`)
  ])

  const upstreamPing = once(upstreamSide, 'ping')
  const clientPong = once(client, 'pong')
  client.ping('from the client')
  t.equal(String((await upstreamPing)[0]), 'from the client', 'the upstream sees the client\'s ping')
  t.equal(String((await clientPong)[0]), 'from the client', 'and its pong reaches the client')

  const clientPing = once(client, 'ping')
  const upstreamPong = once(upstreamSide, 'pong')
  upstreamSide.ping(Buffer.from([0, 1, 2, 253, 254, 255]))
  t.same([...(await clientPing)[0] as Buffer], [0, 1, 2, 253, 254, 255], 'the client sees the upstream\'s ping')
  t.same([...(await upstreamPong)[0] as Buffer], [0, 1, 2, 253, 254, 255], 'and its pong reaches the upstream')
})
