// Load shedding (plugins/observability/load-shedding.ts, LOAD_SHED_EVENT_LOOP_DELAY): while the event loop
// lags past the limit, a new request gets 503 with Retry-After, and a download and a WebSocket
// already running carry on to their end. The proxy is built in this process so that the test
// can hold its event loop; nothing for it ships in the proxy.
import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { metricsOf, overload, sample, startListeners } from './helpers/ops.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const CHUNK = Buffer.alloc(10_000, 'd')
const CHUNKS = 25

t.test('503 + Retry-After for new requests under pressure; running transfers are not cut', async t => {
  const ws = await startWsUpstream(t)
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url !== '/api/assets/1/original') {
      res.end('{"res":"pong"}')
      return
    }
    // a slow download: 25 chunks 200 ms apart, 5 s
    let sent = 0
    const timer = setInterval(() => {
      res.write(CHUNK)
      if (++sent === CHUNKS) {
        clearInterval(timer)
        res.end()
      }
    }, 200)
    res.on('close', () => clearInterval(timer))
  })
  const proxy = await startListeners(t, upstream.url, { LOAD_SHED_EVENT_LOOP_DELAY: '50ms' })
  const wsProxy = await startListeners(t, ws.url, { LOAD_SHED_EVENT_LOOP_DELAY: '50ms' })

  const calm = await request(proxy.url + '/api/server/ping')
  t.equal(calm.statusCode, 200, 'answered while the loop is calm')
  await calm.body.dump()
  const socket = await openClient(t, `ws://127.0.0.1:${wsProxy.port}/api/socket.io/?EIO=4&transport=websocket`)
  const download = await request(proxy.url + '/api/assets/1/original')
  t.equal(download.statusCode, 200)
  let downloadEnded = false
  const downloaded = download.body.arrayBuffer().finally(() => { downloadEnded = true })

  // the loop's delay is averaged over one-second samples: 2.2 s of overload spans
  // a whole sample; a bounded retry covers a machine slow enough to blur it
  let shed: { status: number, retryAfter: unknown, body: unknown } | undefined
  for (let attempt = 1; attempt <= 3 && shed === undefined; attempt++) {
    await overload(2200)
    const response = await request(proxy.url + '/api/server/ping')
    const body = await response.body.json()
    if (response.statusCode === 503) shed = { status: response.statusCode, retryAfter: response.headers['retry-after'], body }
    else t.comment(`attempt ${attempt}: ${response.statusCode}`)
  }
  t.same(shed, {
    status: 503,
    retryAfter: '10',
    body: { statusCode: 503, code: 'FST_UNDER_PRESSURE', error: 'Service Unavailable', message: 'Service Unavailable' }
  }, 'a new request is shed')
  t.notOk(downloadEnded, 'while the download was still running')
  // a shed request is one the operator must see: counted (and logged) like any other
  let counted = ''
  await waitFor(async () => {
    counted = await metricsOf(proxy.adminUrl)
    return (sample(counted, 'immich_proxy_requests_total', 'status_class="5xx"') ?? 0) >= 1
  }, 2000, 'the shed request to be counted', { last: () => counted }).catch(() => {}) // the assertion below says what was missing
  t.ok((sample(counted, 'immich_proxy_requests_total', 'status_class="5xx"') ?? 0) >= 1, 'the shed request is counted as 5xx')

  t.equal((await within(downloaded, 10_000, 'the download')).byteLength, CHUNK.length * CHUNKS, 'the download already running got every byte')
  socket.send('still here')
  const [echo] = await within(once(socket, 'message'), 5000, 'the echo') as [Buffer]
  t.equal(echo.toString(), 'still here', 'the WebSocket already open still carries messages')

  // the loop calm again: the next sample lifts the shedding
  let status = 0
  for (let attempt = 1; attempt <= 30 && status !== 200; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 200))
    const response = await request(proxy.url + '/api/server/ping')
    status = response.statusCode
    await response.body.dump()
  }
  t.equal(status, 200, 'requests are answered again once the loop is calm')
})
