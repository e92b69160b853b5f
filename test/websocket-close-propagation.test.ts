import t from 'tap'
import { once } from 'node:events'
import WebSocket from 'ws'
import { startProxy } from './helper.js'
import { closeOf, openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const path = '/api/socket.io/?EIO=4&transport=websocket'

t.test('a client that drops its connection closes the upstream one', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const [[upstreamSide], client] = await Promise.all([upstream.nextConnection(), openClient(t, `ws://127.0.0.1:${proxy.port}${path}`)])
  t.equal(upstream.sockets.size, 1)
  const closed = closeOf(upstreamSide)
  client.terminate()
  t.same(await within(closed, 5000, 'the upstream socket to close'), { code: 1006, reason: '' }, 'the upstream sees the connection go, no close frame invented')
  await waitFor(() => upstream.sockets.size === 0, 5000, 'the upstream connection to close')
})

t.test('an upstream that drops its connection closes the client\'s', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const [[upstreamSide], client] = await Promise.all([upstream.nextConnection(), openClient(t, `ws://127.0.0.1:${proxy.port}${path}`)])
  const closed = closeOf(client)
  upstreamSide.terminate()
  t.same(await within(closed, 5000, 'the client to close'), { code: 1006, reason: '' })
})

t.test('a clean close on either side leaves no connection open', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  for (const side of ['client', 'upstream']) {
    const [[upstreamSide], client] = await Promise.all([upstream.nextConnection(), openClient(t, `ws://127.0.0.1:${proxy.port}${path}`)])
    const clientSocketClosed = once((client as WebSocket & { _socket: NodeJS.EventEmitter })._socket, 'close')
    ;(side === 'client' ? client : upstreamSide).close(1000, 'done')
    await within(clientSocketClosed, 5000, `the client's TCP connection to close after the ${side} closed`)
    await waitFor(() => upstream.sockets.size === 0, 5000, `the upstream's TCP connection to close after the ${side} closed`)
    t.pass(`${side} closed: both TCP connections are gone`)
  }
})

t.test('a client that leaves during the upstream handshake leaves no upstream connection', async t => {
  let answer: (() => void) | undefined
  const upstreamSawEnd: Promise<unknown>[] = []
  const upstream = await startWsUpstream(t, {
    // Immich is slow to answer the upgrade; its side reads the socket meanwhile, so the proxy
    // closing the connection shows up here as 'end'
    beforeUpgrade: async (req, socket) => {
      upstreamSawEnd.push(once(socket, 'end'))
      socket.resume()
      await new Promise<void>(resolve => { answer = resolve })
      return true
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const client = new WebSocket(`ws://127.0.0.1:${proxy.port}${path}`)
  const clientError = once(client, 'error')
  await waitFor(() => upstream.upgrades.length === 1, 5000, 'the upgrade to reach the upstream')
  t.equal(upstream.sockets.size, 1, 'the proxy is connected to the upstream')

  client.terminate()
  t.match((await clientError)[0], { message: /closed before the connection was established/ })
  await within(upstreamSawEnd[0], 5000, 'the proxy to close its upstream connection')
  t.pass('the proxy closed the upstream connection')
  // the late 101 finds nobody to write to
  answer?.()
  await waitFor(() => upstream.sockets.size === 0, 5000, 'no upstream connection left')
  t.equal(upstream.wss.clients.size, 0, 'no WebSocket left open at the upstream')
})
