// /livez, /readyz and /metrics live on the admin listener only: on the proxied host every path
// is Immich's, so they reach Immich like any other.
import t from 'tap'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { startListeners } from './helpers/ops.js'

t.test('the main listener forwards /livez, /readyz and /metrics to Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.statusCode = 404
    res.end(`immich: ${req.url ?? ''}`)
  })
  const proxy = await startListeners(t, upstream.url)
  for (const path of ['/livez', '/readyz', '/metrics']) {
    const response = await request(proxy.url + path)
    t.equal(response.statusCode, 404, path)
    t.equal(await response.body.text(), `immich: ${path}`, `${path} answered by Immich`)
  }
  t.same(upstream.requests.map(req => req.url), ['/livez', '/readyz', '/metrics'])
})
