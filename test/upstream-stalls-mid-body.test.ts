import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { settleWithin } from './helpers/timeouts.js'

t.test('an upstream silent mid-body past PROXY_TIMEOUT cuts the response instead of hanging', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    // headers and a first part of the body, then silence with the connection open
    if (req.url === '/api/assets/1/original') res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 1000 })
    else res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    res.write('x'.repeat(100))
  })
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })

  for (const path of ['/api/assets/1/original', '/api/sync/stream']) {
    const res = await request(`${proxy.url}${path}`)
    t.equal(res.statusCode, 200, `${path}: the response had started`)
    let received = 0
    const read = (async () => { for await (const chunk of res.body) received += (chunk as Buffer).length })()
    const outcome = await settleWithin(read, 10_000)
    t.equal(outcome.state, 'rejected', `${path}: the client's response errors instead of hanging or ending as if complete`)
    t.equal(received, 100, `${path}: the client got what Immich sent before it stalled`)
  }

  t.equal(upstream.requests.length, 2)
  for (const req of upstream.requests) {
    if (!req.socket.destroyed) await settleWithin(once(req.socket, 'close'), 10_000)
    t.ok(req.socket.destroyed, 'the proxy closed the stalled upstream connection')
  }
})
