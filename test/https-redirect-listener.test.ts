import t, { type Test } from 'tap'
import { request } from 'undici'
import { rawExchange, startUpstream } from './helper.js'
import { startRedirectListener } from './helpers/tls.js'

// HTTP_PORT beside HTTPS: browsers typing the bare name land on HTTPS; the mobile app's probe of
// /.well-known/immich over HTTP still reaches Immich; ACME's path is left free (404).
async function setUp (t: Test, env: Record<string, string> = {}) {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ api: { endpoint: '/api' } }))
  })
  const listener = await startRedirectListener(t, upstream.url, { TLS_SELF_SIGNED: 'true', HTTP_PORT: '8080', ...env })
  return { upstream, port: listener.port }
}

t.test('every path is sent to HTTPS with 308, path and query kept', async t => {
  const { upstream, port } = await setUp(t, { HTTPS_REDIRECT_PORT: '8443' })
  const get = await request(`http://127.0.0.1:${port}/photos/abc?x=1&y=%20z`, { headers: { host: `immich.test:${port}` } })
  t.equal(get.statusCode, 308)
  t.equal(get.headers.location, 'https://immich.test:8443/photos/abc?x=1&y=%20z', 'the host name from Host, the published HTTPS port')
  t.equal(get.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP')
  await get.body.dump()

  const post = await request(`http://127.0.0.1:${port}/api/assets`, { method: 'POST', headers: { host: 'immich.test', 'content-type': 'application/json' }, body: '{"a":1}' })
  t.equal(post.statusCode, 308, 'POST keeps 308: the client repeats it with method and body')
  t.equal(post.headers.location, 'https://immich.test:8443/api/assets')
  await post.body.dump()

  const ipv6 = await rawExchange(port, 'GET /x HTTP/1.1\r\nHost: [fd00::5]:8080\r\nConnection: close\r\n\r\n')
  t.match(ipv6, /^HTTP\/1\.1 308 /)
  t.match(ipv6, /\r\nlocation: https:\/\/\[fd00::5\]:8443\/x\r\n/i, 'an IPv6 literal keeps its brackets')
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
})

t.test('with HTTPS on 443 the Location has no port', async t => {
  const { port } = await setUp(t)
  const res = await request(`http://127.0.0.1:${port}/auth/login?continue=%2Fphotos`, { headers: { host: 'photos.example.org:80' } })
  t.equal(res.statusCode, 308)
  t.equal(res.headers.location, 'https://photos.example.org/auth/login?continue=%2Fphotos')
  await res.body.dump()
})

t.test('/.well-known/immich is proxied to Immich over HTTP', async t => {
  const { upstream, port } = await setUp(t, { HTTPS_REDIRECT_PORT: '8443' })
  const res = await request(`http://127.0.0.1:${port}/.well-known/immich`, { headers: { host: `immich.test:${port}` } })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { api: { endpoint: '/api' } })
  t.equal(upstream.requests.length, 1)
  t.equal(upstream.requests[0].url, '/.well-known/immich')
  t.equal(upstream.requests[0].headers['x-forwarded-proto'], 'http', 'Immich hears it came over plain HTTP')
  t.equal(upstream.requests[0].headers.host, `immich.test:${port}`)
})

t.test('/.well-known/acme-challenge/ answers 404, not a redirect', async t => {
  const { upstream, port } = await setUp(t)
  const res = await request(`http://127.0.0.1:${port}/.well-known/acme-challenge/x`, { headers: { host: 'immich.test' } })
  t.equal(res.statusCode, 404)
  t.equal(res.headers.location, undefined)
  await res.body.dump()
  t.equal(upstream.requests.length, 0)
})

t.test('a Host that is not a plain name or address gets 400, never a Location built from it', async t => {
  const { port } = await setUp(t)
  const garbage = ['evil.example/path', 'user@immich.test', 'immich.test\\@evil', 'immich.test#x', 'a b', '', 'immich.test:443:80', 'immich.test:abc', 'fd00::5']
  for (const host of garbage) {
    const response = await rawExchange(port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    t.match(response, /^HTTP\/1\.1 400 /, `Host: ${JSON.stringify(host)}`)
    // refused by the Host check every listener makes, or by the redirect's own
    t.match(response, /"message":"(A valid Host header is needed to redirect to HTTPS|The Host field is not a host name or address with an optional port)"/)
    t.notMatch(response, /\r\nlocation:/i)
  }
  const noHost = await rawExchange(port, 'GET /x HTTP/1.0\r\n\r\n')
  t.match(noHost, /^HTTP\/1\.1 400 /, 'no Host at all (HTTP/1.0)')
  t.match(noHost, /"message":"A valid Host header is needed to redirect to HTTPS"/)
  t.notMatch(noHost, /\r\nlocation:/i)
})
