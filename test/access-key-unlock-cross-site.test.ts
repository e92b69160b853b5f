// The unlock form refuses a POST another site makes a browser send (an auto-submitting form, a
// no-cors fetch), with a 403 that does not count towards the brake: else any page visited behind
// the same address could send ten wrong keys and lock that address out. A browser always sends
// Origin with a POST, and Sec-Fetch-Site where it knows it; a request with neither is a program
// (curl), which no other site can steer, and is served as before.
import t from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { postUnlock, statusWith } from './helpers/access-key.js'

const KEY = 'the-right-key'

t.test('foreign Origin, Origin: null and cross-site or same-site Sec-Fetch-Site: 403, not counted', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2' })
  const refused: Array<Record<string, string>> = [
    { origin: 'https://evil.example' },
    { origin: 'null' },
    { origin: `http://localhost:${proxy.port}` },
    { origin: `https://127.0.0.1:${proxy.port}` },
    { origin: proxy.url, 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' },
    { 'sec-fetch-site': 'cross-site' }
  ]
  for (const headers of refused) {
    for (let i = 0; i < 3; i++) {
      const answer = await postUnlock(proxy.url, { key: `guess-${i}`, next: '/' }, undefined, headers)
      t.equal(answer.status, 403, `${JSON.stringify(headers)}: refused`)
      t.equal(answer.setCookie, undefined)
      t.match(answer.body, /another site/)
    }
    const right = await postUnlock(proxy.url, { key: KEY, next: '/' }, undefined, headers)
    t.equal(right.status, 403, `${JSON.stringify(headers)}: the right key is refused as well; the form is the only way in`)
  }
  t.equal(await statusWith(proxy.url + '/api/server/ping', KEY), 200, `${refused.length * 4} cross-site posts started no brake`)
})

t.test('same origin, and no Origin at all: the form works and wrong keys count', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '3' })
  const sameOrigin = { origin: proxy.url, 'sec-fetch-site': 'same-origin' }
  const ok = await postUnlock(proxy.url, { key: KEY, next: '/photos' }, undefined, sameOrigin)
  t.equal(ok.status, 303, 'a same-origin post with the key unlocks')
  t.match(ok.setCookie, /^immich_proxy_access=/)
  t.equal((await postUnlock(proxy.url, { key: KEY, next: '/' }, undefined, { origin: proxy.url.toUpperCase().replace('HTTP:', 'http:') })).status, 303,
    'the host in Origin compares case-insensitively')
  t.equal((await postUnlock(proxy.url, { key: KEY, next: '/' }, undefined, { 'sec-fetch-site': 'none' })).status, 303, 'Sec-Fetch-Site: none is the user\'s own navigation')
  t.equal((await postUnlock(proxy.url, { key: KEY, next: '/' })).status, 303, 'curl: no Origin, no Sec-Fetch-Site')

  t.equal((await postUnlock(proxy.url, { key: 'guess-1', next: '/' }, undefined, sameOrigin)).status, 403)
  t.equal((await postUnlock(proxy.url, { key: 'guess-2', next: '/' })).status, 403)
  t.equal((await postUnlock(proxy.url, { key: 'guess-3', next: '/' }, undefined, sameOrigin)).status, 403)
  t.equal(await statusWith(proxy.url + '/api/server/ping', KEY), 429, 'three counted guesses: braked')
})

t.test('behind a trusted proxy the origin is the one it forwards (X-Forwarded-Proto and X-Forwarded-Host)', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2', TRUST_PROXY: 'loopback' })
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'photos.example.org' }
  const ok = await postUnlock(proxy.url, { key: KEY, next: '/' }, undefined, { ...forwarded, origin: 'https://photos.example.org', 'sec-fetch-site': 'same-origin' })
  t.equal(ok.status, 303, 'the public origin is same-origin')
  t.match(ok.setCookie, /; Secure/)
  const plain = await postUnlock(proxy.url, { key: KEY, next: '/' }, undefined, { ...forwarded, origin: 'http://photos.example.org' })
  t.equal(plain.status, 403, 'the same host over the other scheme is another origin')
  t.match(plain.body, /another site/)
})
