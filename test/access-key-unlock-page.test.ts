// Browsers cannot add X-Access-Key, so a browser's page load without the key gets a small HTML
// form instead of a bare 403; API clients, uploads and upgrades keep the JSON 403 they can parse.
// ACCESS_KEY_COOKIE_MAX_AGE=0 turns the page off.
import t from 'tap'
import { request } from 'undici'
import { rawExchange, startProxy, startUpstream } from './helper.js'
import { UNLOCK, postUnlock } from './helpers/access-key.js'

const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }

t.test('a browser page load without the key: 403 with the unlock form, returning to the same page', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k' })

  const page = await request(proxy.url + '/photos/abc?at=2024', { headers: BROWSER })
  t.equal(page.statusCode, 403)
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.headers['cache-control'], 'no-store', 'no cache keeps the form in place of Immich\'s page')
  const html = await page.body.text()
  t.match(html, `<form method="post" action="${UNLOCK}">`)
  t.match(html, /<input id="key" name="key" type="password"[^>]* required/)
  t.match(html, '<input type="hidden" name="next" value="/photos/abc?at=2024">')
  t.notMatch(html, /role="alert"/, 'no error shown before a key was tried')
  t.notMatch(html, /<(script|link|img)\b/, 'self-contained: nothing else to load from a locked host')

  const wrongHeader = await request(proxy.url + '/', { headers: { ...BROWSER, 'x-access-key': 'nope' } })
  t.equal(wrongHeader.statusCode, 403)
  t.match(await wrongHeader.body.text(), /<p class="error" role="alert">That key is not valid\.<\/p>/, 'a wrong key says so')

  const head = await request(proxy.url + '/photos', { method: 'HEAD', headers: BROWSER })
  t.equal(head.statusCode, 403)
  t.equal(head.headers['content-type'], 'text/html; charset=utf-8')
  await head.body.dump()
  t.equal(upstream.requests.length, 0)
})

t.test('the path in the form is escaped, never markup', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k' })
  const answer = await rawExchange(proxy.port, 'GET /search?q="><script>alert(1)</script>&x=\'y\' HTTP/1.1\r\nHost: immich.test\r\nAccept: text/html\r\nConnection: close\r\n\r\n')
  t.match(answer, /^HTTP\/1\.1 403 /)
  t.notMatch(answer, /<script>/)
  t.match(answer, /name="next" value="\/search\?q=%22%3E%3Cscript%3Ealert\(1\)%3C\/script%3E&amp;x=%27y%27"/)
})

t.test('API paths, other methods, JSON clients and upgrades keep the JSON 403', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k' })
  const cases: Array<[string, string, Record<string, string>]> = [
    ['GET', '/api/server/ping', BROWSER],
    ['GET', '/api', BROWSER],
    ['GET', '/api?x=1', BROWSER],
    ['GET', '/api/socket.io/?EIO=4&transport=polling', BROWSER],
    ['POST', '/photos', BROWSER],
    ['PUT', '/photos', BROWSER],
    ['GET', '/photos', { accept: 'application/json' }],
    ['GET', '/photos', {}],
    ['GET', UNLOCK, { accept: 'application/json' }]
  ]
  for (const [method, path, headers] of cases) {
    const response = await request(proxy.url + path, { method: method as 'GET', headers })
    t.equal(response.statusCode, 403, `${method} ${path} ${JSON.stringify(headers)}`)
    t.match(response.headers['content-type'], /^application\/json/)
    t.match(await response.body.json(), { statusCode: 403, code: 'IMMICH_PROXY_ACCESS_KEY' })
  }
  const upgrade = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: immich.test\r\nAccept: text/html\r\nConnection: Upgrade\r\n' +
    'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  t.match(upgrade, /^HTTP\/1\.1 403 [^]*content-type: application\/json[^]*"statusCode":403/, 'an upgrade, even one that accepts HTML')
  t.equal(upstream.requests.length, 0)
})

t.test('ACCESS_KEY_COOKIE_MAX_AGE=0: no page and no unlock route, only the JSON 403', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_COOKIE_MAX_AGE: '0' })
  const page = await request(proxy.url + '/photos', { headers: BROWSER })
  t.equal(page.statusCode, 403)
  t.match(page.headers['content-type'], /^application\/json/)
  t.match(await page.body.json(), { statusCode: 403 })

  const unlock = await postUnlock(proxy.url, { key: 'k', next: '/' })
  t.equal(unlock.status, 403, 'the right key in a form opens nothing')
  t.equal(unlock.setCookie, undefined)
  t.match(JSON.parse(unlock.body), { statusCode: 403, code: 'IMMICH_PROXY_ACCESS_KEY' })
  t.equal(upstream.requests.length, 0)
})
