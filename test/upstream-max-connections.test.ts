// UPSTREAM_MAX_CONNECTIONS caps the connections to Immich: past it requests wait for a free one
// (answered in turn, none failed) and, waiting longer than PROXY_TIMEOUT, get 503 with a JSON
// message rather than a connection each.
import t from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { waitFor } from './helpers/wait.js'

t.test('requests past the cap wait for a connection to Immich', async t => {
  let connections = 0
  const upstream = await startUpstream(t, (req, res) => { setTimeout(() => res.end('ok'), 100) })
  upstream.server.on('connection', () => { connections++ })
  const proxy = await startProxy(t, upstream.url, { UPSTREAM_MAX_CONNECTIONS: '2' })
  // one connection per request on the client side, so that only the upstream cap can hold them
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    const response = await request(`${proxy.url}/api/assets/${i}/thumbnail`, { reset: true })
    return `${response.statusCode} ${await response.body.text()}`
  }))
  t.same(answers, Array(8).fill('200 ok'), 'every request answered')
  t.ok(connections <= 2, `${connections} connections to Immich for 8 concurrent requests (at most 2)`)
})

t.test('a request that waits past PROXY_TIMEOUT for a connection gets 503', async t => {
  // /slow keeps the one connection busy for 3 s without ever being silent for PROXY_TIMEOUT,
  // so only the wait in the queue can end the other request
  let slowDone = false
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url !== '/slow') {
      res.end('fast')
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain' })
    let sent = 0
    const timer = setInterval(() => {
      res.write('.')
      if (++sent < 10 && !slowDone) return
      clearInterval(timer)
      res.end()
    }, 300)
    res.on('close', () => clearInterval(timer))
  })
  const proxy = await startProxy(t, upstream.url, { UPSTREAM_MAX_CONNECTIONS: '1', PROXY_TIMEOUT: '1s' })
  const slow = request(`${proxy.url}/slow`, { reset: true })
  await waitFor(() => upstream.requests.length === 1, 5000, 'the slow request to reach Immich')
  const queued = await request(`${proxy.url}/fast`, { reset: true })
  t.equal(queued.statusCode, 503, 'the queued request gets 503')
  t.equal(queued.headers['retry-after'], '10')
  t.same(await queued.body.json(), {
    statusCode: 503,
    error: 'Service Unavailable',
    message: 'The proxy is at its limit of connections to Immich; try again shortly'
  })
  t.equal(upstream.requests.length, 1, 'the queued request never reached Immich')
  slowDone = true
  const first = await slow
  t.equal(first.statusCode, 200, 'the request holding the connection is answered')
  await first.body.dump()
  const after = await request(`${proxy.url}/fast`)
  t.equal(`${after.statusCode} ${await after.body.text()}`, '200 fast', 'the pool serves again')
})
