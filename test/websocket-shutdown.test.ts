import t from 'tap'
import WebSocket from 'ws'
import { startProxy } from './helper.js'
import { closeOf, openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const path = '/api/socket.io/?EIO=4&transport=websocket'

t.test('closing the proxy is not held up by open WebSockets, and closes them at both ends', async t => {
  let answer: (() => void) | undefined
  const upstream = await startWsUpstream(t, {
    beforeUpgrade: async req => {
      // the second upgrade stays in its handshake
      if (req.url?.endsWith('pending') === true) await new Promise<void>(resolve => { answer = resolve })
      return true
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const [[upstreamSide], client] = await Promise.all([upstream.nextConnection(), openClient(t, `ws://127.0.0.1:${proxy.port}${path}`)])
  const pending = new WebSocket(`ws://127.0.0.1:${proxy.port}${path}&pending`)
  t.teardown(() => pending.terminate())
  const pendingClosed = new Promise<unknown>(resolve => pending.once('error', resolve))
  await waitFor(() => upstream.upgrades.length === 2, 5000, 'the second upgrade to reach the upstream')

  const clientClosed = closeOf(client)
  const upstreamClosed = closeOf(upstreamSide)
  await within(proxy.app.close(), 5000, 'the proxy to close')
  t.same(await within(clientClosed, 5000, 'the client to see the close'), { code: 1006, reason: '' })
  t.same(await within(upstreamClosed, 5000, 'the upstream to see the close'), { code: 1006, reason: '' })
  t.match(await within(pendingClosed, 5000, 'the pending handshake to fail'), { message: /socket hang up|closed before/ })
  answer?.()
  await waitFor(() => upstream.sockets.size === 0, 5000, 'no upstream connection left')
  t.pass('no upstream connection left')
})
