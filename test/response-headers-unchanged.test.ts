import t from 'tap'
import { gzipSync, gunzipSync } from 'node:zlib'
import { Client } from 'undici'
import { rawExchange, startProxy, startUpstream } from './helper.js'

t.test('several Set-Cookie headers come back as separate lines', async t => {
  const cookies = [
    'immich_access_token=abc; Path=/; Max-Age=34560000; HttpOnly; SameSite=Lax',
    'immich_auth_type=password; Path=/; Max-Age=34560000; HttpOnly; SameSite=Lax',
    'immich_is_authenticated=true; Path=/; Max-Age=34560000; SameSite=Lax; Expires=Sat, 01 Jan 2028 00:00:00 GMT'
  ]
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('set-cookie', cookies)
    res.end()
  })
  const proxy = await startProxy(t, upstream.url)

  const response = await rawExchange(proxy.port, 'POST /api/auth/login HTTP/1.1\r\nHost: immich.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  t.match(response, /^HTTP\/1\.1 200 /)
  const lines = response.slice(0, response.indexOf('\r\n\r\n')).split('\r\n')
  t.same(lines.filter(line => /^set-cookie:/i.test(line)).map(line => line.replace(/^set-cookie:\s*/i, '')), cookies)
})

t.test('Location is not rewritten, relative or absolute', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(302, { location: req.url === '/relative' ? '/auth/login' : 'http://127.0.0.1:2283/x' })
    res.end()
  })
  const proxy = await startProxy(t, upstream.url)
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  for (const [path, location] of [['/relative', '/auth/login'], ['/absolute', 'http://127.0.0.1:2283/x']]) {
    const res = await client.request({ path, method: 'GET' })
    await res.body.dump()
    t.equal(res.statusCode, 302)
    t.equal(res.headers.location, location, `${path}: as Immich sent it (nginx proxy_redirect off)`)
  }
})

t.test('a gzipped body and its caching headers pass through as bytes', async t => {
  const json = JSON.stringify({ assets: Array.from({ length: 200 }, (_, i) => ({ id: `asset-${i}` })) })
  const gzipped = gzipSync(json)
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-encoding': 'gzip',
      'content-length': String(gzipped.length),
      etag: 'W/"4f2-abc123"',
      'cache-control': 'private, max-age=86400, no-transform',
      vary: 'Accept-Encoding'
    })
    res.end(gzipped)
  })
  const proxy = await startProxy(t, upstream.url)
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  const res = await client.request({ path: '/api/timeline/bucket', method: 'GET', headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-encoding'], 'gzip')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.headers.etag, 'W/"4f2-abc123"')
  t.equal(res.headers['cache-control'], 'private, max-age=86400, no-transform')
  t.equal(res.headers.vary, 'Accept-Encoding')
  const body = Buffer.from(await res.body.arrayBuffer())
  t.same(body, gzipped, 'the compressed bytes, not a decoded body')
  t.equal(gunzipSync(body).toString(), json)
  t.equal(upstream.requests[0].headers['accept-encoding'], 'gzip', "the client's Accept-Encoding reached Immich")
})
