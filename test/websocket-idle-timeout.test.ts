import t from 'tap'
import { startProxy } from './helper.js'
import { closeOf, openClient, startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

// PROXY_TIMEOUT is an inactivity limit for tunnels too (nginx proxy_read_timeout/send_timeout):
// a socket that keeps moving is never cut, a silent one is closed at both ends.
t.test('a moving tunnel outlives PROXY_TIMEOUT; a silent one is closed after it', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })
  const url = `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`
  const [[silentUpstream], silent] = await Promise.all([upstream.nextConnection(), openClient(t, url)])
  const [, moving] = await Promise.all([upstream.nextConnection(), openClient(t, url)])
  const silentClosed = Promise.all([closeOf(silent), closeOf(silentUpstream)])

  // a message every 250 ms for 5 s: more than twice the limit, never silent for an eighth of it
  let echoes = 0
  moving.on('message', () => echoes++)
  for (let i = 0; i < 20; i++) {
    moving.send(`tick ${i}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  t.equal(moving.readyState, moving.OPEN, 'the moving socket is still open after 5 s')
  t.equal(echoes, 20, 'and every tick came back')

  const [clientSide, upstreamSide] = await within(silentClosed, 10_000, 'the silent tunnel to close')
  t.equal(clientSide.code, 1006, 'the silent tunnel was cut at the client')
  t.equal(upstreamSide.code, 1006, 'and at Immich')
})
