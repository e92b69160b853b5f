// The two gauges an operator watches before a restart: uploads still coming in and WebSockets
// still open, each 1 while one is in progress and back to 0 once it has ended.
import t from 'tap'
import { once } from 'node:events'
import { startUpstream } from './helper.js'
import { metricsOf, pacedUpload, sample, startListeners } from './helpers/ops.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

t.test('uploads_in_flight is 1 during an upload and 0 after it', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    let received = 0
    req.on('data', (chunk: Buffer) => { received += chunk.length })
    req.on('end', () => res.end(JSON.stringify({ received })))
  })
  const proxy = await startListeners(t, upstream.url)
  t.equal(sample(await metricsOf(proxy.adminUrl), 'immich_proxy_uploads_in_flight'), 0)

  // 1 MB in 10 pieces 200 ms apart: about 2 s in flight
  const upload = pacedUpload(proxy.port, '/api/assets', 1_000_000, 10, 200)
  let during = ''
  await waitFor(async () => {
    during = await metricsOf(proxy.adminUrl)
    return sample(during, 'immich_proxy_uploads_in_flight') === 1
  }, 5000, 'the upload to be counted', { last: () => during })
  t.equal(sample(during, 'immich_proxy_uploads_in_flight'), 1)
  t.ok(upload.sent() < 1_000_000, `seen while in progress (${upload.sent()} bytes sent)`)

  t.same(await upload.done, { status: 200, body: '{"received":1000000}' })
  let after = ''
  await waitFor(async () => {
    after = await metricsOf(proxy.adminUrl)
    return sample(after, 'immich_proxy_uploads_in_flight') === 0
  }, 5000, 'the upload to end', { last: () => after })
  t.equal(sample(after, 'immich_proxy_uploads_in_flight'), 0)
  t.equal(sample(after, 'immich_proxy_requests_total', 'status_class="2xx"'), 1)
})

t.test('websockets_open is 1 while a tunnel is open and 0 after; its bytes are counted', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startListeners(t, upstream.url)
  const before = await metricsOf(proxy.adminUrl)
  t.equal(sample(before, 'immich_proxy_websockets_open'), 0)
  const receivedBefore = sample(before, 'immich_proxy_received_bytes_total') as number
  const sentBefore = sample(before, 'immich_proxy_sent_bytes_total') as number

  const ws = await openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`)
  await waitFor(async () => sample(await metricsOf(proxy.adminUrl), 'immich_proxy_websockets_open') === 1, 5000, 'the tunnel to be counted')
  t.pass('websockets_open = 1')

  const message = Buffer.alloc(100_000, 'w')
  ws.send(message)
  const [echo] = await within(once(ws, 'message'), 5000, 'the echo') as [Buffer]
  t.equal(echo.length, message.length)
  ws.close()
  await within(once(ws, 'close'), 5000, 'the close')

  let after = ''
  await waitFor(async () => {
    after = await metricsOf(proxy.adminUrl)
    return sample(after, 'immich_proxy_websockets_open') === 0
  }, 5000, 'the tunnel to close', { last: () => after })
  t.equal(sample(after, 'immich_proxy_websockets_open'), 0)
  // a masked client frame and the server's unmasked echo, plus the close frames
  const received = (sample(after, 'immich_proxy_received_bytes_total') as number) - receivedBefore
  const sent = (sample(after, 'immich_proxy_sent_bytes_total') as number) - sentBefore
  t.ok(received >= message.length && received < message.length + 100, `received ${received} bytes of frames`)
  t.ok(sent >= message.length && sent < message.length + 100, `sent ${sent} bytes of frames`)
})
