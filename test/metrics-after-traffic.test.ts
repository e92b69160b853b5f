// /metrics on the admin listener after real traffic through the main one: requests by status
// class, bytes each way (bodies plus HTTP/1.1 heads), and Immich's response time histogram.
import t from 'tap'
import { Client } from 'undici'
import { startUpstream } from './helper.js'
import { metricsOf, sample, startListeners } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

const DOWNLOAD = 300_000
const UPLOAD = 500_000
// a request or response head on loopback with undici is a few hundred bytes
const HEADS = 4 * 1024

t.test('requests by status class, bytes in and out, upstream latency', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    let received = 0
    req.on('data', (chunk: Buffer) => { received += chunk.length })
    req.on('end', () => {
      if (req.url === '/api/assets/1/original') res.end(Buffer.alloc(DOWNLOAD, 'd'))
      else if (req.url === '/api/assets') res.end(JSON.stringify({ received }))
      else if (req.url === '/api/boom') res.writeHead(500).end('{"message":"boom"}')
      else res.writeHead(404).end('{"message":"not found"}')
    })
  })
  const proxy = await startListeners(t, upstream.url)
  const before = await metricsOf(proxy.adminUrl)
  t.equal(sample(before, 'immich_proxy_requests_total', 'status_class="2xx"'), undefined, 'no request counted yet')
  t.equal(sample(before, 'immich_proxy_received_bytes_total'), 0)
  t.equal(sample(before, 'immich_proxy_sent_bytes_total'), 0)
  t.equal(sample(before, 'immich_proxy_upstream_response_seconds_count'), 0)

  // one keep-alive connection for all: each request's bytes are told apart on a shared socket
  const client = new Client(proxy.url)
  t.teardown(() => client.close())
  const download = await client.request({ path: '/api/assets/1/original', method: 'GET' })
  t.equal((await download.body.arrayBuffer()).byteLength, DOWNLOAD)
  const upload = await client.request({ path: '/api/assets', method: 'POST', body: Buffer.alloc(UPLOAD, 'u') })
  t.same(await upload.body.json(), { received: UPLOAD })
  for (const path of ['/api/nope', '/api/nope', '/api/boom']) {
    const response = await client.request({ path, method: 'GET' })
    await response.body.dump()
  }

  let after = ''
  await waitFor(async () => {
    after = await metricsOf(proxy.adminUrl)
    return sample(after, 'immich_proxy_requests_total', 'status_class="5xx"') === 1
  }, 5000, 'the last request to be counted', { last: () => after })
  t.equal(sample(after, 'immich_proxy_requests_total', 'status_class="2xx"'), 2)
  t.equal(sample(after, 'immich_proxy_requests_total', 'status_class="4xx"'), 2)
  t.equal(sample(after, 'immich_proxy_requests_total', 'status_class="5xx"'), 1)

  const received = sample(after, 'immich_proxy_received_bytes_total') as number
  const sent = sample(after, 'immich_proxy_sent_bytes_total') as number
  t.ok(received >= UPLOAD && received < UPLOAD + HEADS, `received ${received} bytes for a ${UPLOAD}-byte upload and five heads`)
  t.ok(sent >= DOWNLOAD && sent < DOWNLOAD + HEADS, `sent ${sent} bytes for a ${DOWNLOAD}-byte download and five small answers`)

  t.equal(sample(after, 'immich_proxy_upstream_response_seconds_count'), 5, 'five answers from Immich timed')
  const sum = sample(after, 'immich_proxy_upstream_response_seconds_sum') as number
  t.ok(sum > 0 && sum < 10, `their time adds up to ${sum} s`)
  t.equal(sample(after, 'immich_proxy_upstream_response_seconds_bucket', 'le="+Inf"'), 5)
})
