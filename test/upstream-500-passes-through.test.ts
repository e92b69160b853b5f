import t from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'

t.test('a 500 from Immich reaches the client as Immich sent it', async t => {
  const body = '{"message":"Failed to load asset","error":"Internal Server Error","statusCode":500,"correlationId":"x1y2"}'
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'x-immich-cid': 'x1y2' })
    res.end(body)
  })
  const proxy = await startProxy(t, upstream.url)

  for (const method of ['GET', 'POST']) {
    const res = await request(`${proxy.url}/api/assets/1`, { method, body: method === 'POST' ? '{}' : undefined })
    t.equal(res.statusCode, 500, method)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(res.headers['x-immich-cid'], 'x1y2', "Immich's own headers kept")
    t.equal(await res.body.text(), body, "Immich's body, not the proxy's")
  }
  t.equal(upstream.requests.length, 2, 'no retry')
})
