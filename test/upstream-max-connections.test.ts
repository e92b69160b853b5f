// UPSTREAM_MAX_CONNECTIONS caps the connections to Immich: past it requests wait for a free one
// (answered in turn, none failed) and, waiting longer than PROXY_TIMEOUT, get 503 with a JSON
// message rather than a connection each.
import t from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'

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
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow'), 3000)
    else res.end('fast')
  })
  const proxy = await startProxy(t, upstream.url, { UPSTREAM_MAX_CONNECTIONS: '1', PROXY_TIMEOUT: '1s' })
  const slow = request(`${proxy.url}/slow`, { reset: true })
  await new Promise(resolve => setTimeout(resolve, 100))
  const queued = await request(`${proxy.url}/fast`, { reset: true })
  t.equal(queued.statusCode, 503, 'the queued request gets 503')
  t.equal(queued.headers['retry-after'], '10')
  t.same(await queued.body.json(), {
    statusCode: 503,
    error: 'Service Unavailable',
    message: 'The proxy is at its limit of connections to Immich; try again shortly'
  })
  const first = await slow
  t.equal(first.statusCode, 504, 'the slow one meets PROXY_TIMEOUT as before')
  await first.body.dump()
  const after = await request(`${proxy.url}/fast`)
  t.equal(`${after.statusCode} ${await after.body.text()}`, '200 fast', 'the pool serves again')
})
