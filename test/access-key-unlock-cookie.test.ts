// The unlock form trades the key for a cookie: HttpOnly, SameSite=Lax, Path=/, with a lifetime,
// carrying a signed expiry (never the key). The guard takes the cookie for the key on every
// request and upgrade, and keeps it from Immich; Immich's own cookies pass. A wrong key on the
// form is a guess like a wrong header and feeds the same brake.
import t from 'tap'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { COOKIE, postUnlock, statusWith } from './helpers/access-key.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

const KEY = 'unlock-me-4RkP9'

t.test('the right key: 303 back to the page and a cookie that is not the key', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: `other,${KEY}` })
  const answer = await postUnlock(proxy.url, { key: KEY, next: '/photos/abc?at=2024' })
  t.equal(answer.status, 303)
  t.equal(answer.location, '/photos/abc?at=2024')
  t.equal(answer.body, '')

  const [pair, ...attributes] = (answer.setCookie as string).split('; ')
  t.same(attributes.sort(), ['HttpOnly', 'Max-Age=2592000', 'Path=/', 'SameSite=Lax'], 'thirty days by default; no Secure over plain HTTP')
  const [name, value] = pair.split('=')
  t.equal(name, COOKIE)
  t.match(value, /^\d{13}\.[A-Za-z0-9_-]{43}$/, 'expiry in ms, then a base64url HMAC-SHA256')
  const expiresAt = Number(value.split('.')[0])
  t.ok(Math.abs(expiresAt - (Date.now() + 2_592_000_000)) < 60_000, 'the signed expiry matches Max-Age')
  for (const form of [KEY, Buffer.from(KEY).toString('base64'), Buffer.from(KEY).toString('base64url'), Buffer.from(KEY).toString('hex'),
    createHash('sha256').update(KEY).digest('base64url')]) {
    t.notOk((answer.setCookie as string).includes(form), `the cookie does not carry the key (${form.slice(0, 8)}…)`)
  }
  t.equal(upstream.requests.length, 0, 'the form itself never reaches Immich')
})

t.test('the cookie admits requests and upgrades, and Immich never sees it; its own cookies pass', async t => {
  const upstream = await startWsUpstream(t)
  const http = await startUpstream(t, (req, res) => res.end(JSON.stringify({ cookie: req.headers.cookie ?? null, key: req.headers['x-access-key'] ?? null })))
  const proxy = await startProxy(t, http.url, { ACCESS_KEY: KEY })
  const wsProxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY })
  const cookie = (await postUnlock(proxy.url, { key: KEY, next: '/' })).cookie as string

  const cases: Array<[string, string | null]> = [
    [cookie, null],
    [`immich_access_token=tok123; ${cookie}; immich_is_authenticated=true`, 'immich_access_token=tok123; immich_is_authenticated=true'],
    [`${cookie}; immich_auth_type=password`, 'immich_auth_type=password'],
    [`immich_access_token=tok123;${cookie}`, 'immich_access_token=tok123']
  ]
  for (const [sent, seen] of cases) {
    const response = await request(proxy.url + '/api/users/me', { headers: { cookie: sent } })
    t.equal(response.statusCode, 200, sent)
    t.same(await response.body.json(), { cookie: seen, key: null }, `Immich saw ${String(seen)}`)
  }
  t.equal(await statusWith(proxy.url + '/api/users/me'), 403, 'without the cookie, refused again')

  // the same cookie works on another listener with the same key: the signature is the key's
  const ws = await openClient(t, `ws://127.0.0.1:${wsProxy.port}/api/socket.io/?EIO=4&transport=websocket`, [], { headers: { cookie: `${cookie}; immich_access_token=tok123` } })
  ws.send('echo via cookie')
  t.equal(String((await within(once(ws, 'message'), 5000, 'the echo'))[0]), 'echo via cookie')
  t.equal(upstream.upgrades[0].headers.cookie, 'immich_access_token=tok123', 'the upgrade reached Immich without the proxy cookie')
})

t.test('a browser holding an old and a new cookie is admitted by whichever is valid', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY })
  const cookie = (await postUnlock(proxy.url, { key: KEY, next: '/' })).cookie as string
  const stale = `${COOKIE}=1000.${'A'.repeat(43)}`
  const response = await request(proxy.url + '/', { headers: { cookie: `${cookie}; ${stale}` } })
  t.equal(response.statusCode, 200)
  await response.body.dump()
})

t.test('a wrong key on the form: 403 form with the error, counted by the brake', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2' })
  const wrong = await postUnlock(proxy.url, { key: 'not-it', next: '/albums' })
  t.equal(wrong.status, 403)
  t.equal(wrong.setCookie, undefined)
  t.match(wrong.body, /<p class="error" role="alert">That key is not valid\.<\/p>/)
  t.match(wrong.body, '<input type="hidden" name="next" value="/albums">', 'the next page is kept for the retry')
  t.notMatch(wrong.body, /not-it/, 'the guess is not echoed back')

  t.equal((await postUnlock(proxy.url, { key: '', next: '/' })).status, 403, 'an empty key is a wrong key')
  t.equal(await statusWith(proxy.url + '/', KEY), 429, 'two form guesses braked the header too')
  const braked = await postUnlock(proxy.url, { key: KEY, next: '/' })
  t.equal(braked.status, 429, 'and the form, right key or not')
  t.ok(Number(braked.retryAfter) > 800, `Retry-After: ${String(braked.retryAfter)} s of the 15 min default`)
  t.match(braked.body, '<p class="error" role="alert">Too many wrong keys from this address; try again in 15 minutes.</p>', 'the wait in words')
  t.equal(braked.body.includes('<form method="post"'), true, 'the form stays, for after the wait')
  t.equal(braked.setCookie, undefined)
})
