import t from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'

const DISCOVERY = '{"api":{"endpoint":"/api"}}'

t.test('/.well-known/immich reaches Immich, GET and HEAD, with the forwarded headers', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': DISCOVERY.length, 'cache-control': 'public, max-age=86400', etag: '"w1"' })
    res.end(req.method === 'HEAD' ? undefined : DISCOVERY)
  })
  const proxy = await startProxy(t, upstream.url)

  const got = await request(`${proxy.url}/.well-known/immich`, { headers: { host: 'photos.example.org:8443', 'x-forwarded-for': '198.51.100.7' } })
  t.equal(got.statusCode, 200)
  t.equal(await got.body.text(), DISCOVERY, "Immich's body")
  t.equal(got.headers['cache-control'], 'public, max-age=86400', "Immich's headers")
  t.equal(got.headers.etag, '"w1"')
  const atImmich = upstream.requests[0]
  t.equal(atImmich.method, 'GET')
  t.equal(atImmich.url, '/.well-known/immich')
  t.equal(atImmich.headers.host, 'photos.example.org:8443', 'Host as the client sent it')
  t.equal(atImmich.headers['x-real-ip'], '127.0.0.1')
  t.equal(atImmich.headers['x-forwarded-for'], '198.51.100.7, 127.0.0.1')
  t.equal(atImmich.headers['x-forwarded-proto'], 'http')

  const head = await request(`${proxy.url}/.well-known/immich`, { method: 'HEAD' })
  t.equal(head.statusCode, 200, 'HEAD')
  t.equal(head.headers['content-length'], String(DISCOVERY.length), "HEAD gets Immich's length")
  t.equal(await head.body.text(), '')
  t.equal(upstream.requests[1].method, 'HEAD', 'HEAD reached Immich as HEAD')
  t.equal(upstream.requests[1].url, '/.well-known/immich')

  const withQuery = await request(`${proxy.url}/.well-known/immich?v=2`)
  t.equal(withQuery.statusCode, 200)
  await withQuery.body.dump()
  t.equal(upstream.requests[2].url, '/.well-known/immich?v=2', 'the query rides along')
})
