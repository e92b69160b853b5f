// A cookie is only as good as its signature and its expiry: an expired, altered or foreign one
// is refused (the browser gets the form again), and refusing it does not count as a guess.
import t from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { COOKIE, postUnlock, statusWith } from './helpers/access-key.js'
import { waitFor } from './helpers/wait.js'

async function statusWithCookie (url: string, cookie: string, accept = 'application/json'): Promise<number> {
  const response = await request(url, { headers: { cookie, accept } })
  await response.body.dump()
  return response.statusCode
}

t.test('ACCESS_KEY_COOKIE_MAX_AGE=1s: Max-Age=1, and the cookie is refused once it has expired', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_COOKIE_MAX_AGE: '1s' })
  const answer = await postUnlock(proxy.url, { key: 'k', next: '/' })
  t.match(answer.setCookie, /; Max-Age=1;/)
  const cookie = answer.cookie as string
  t.equal(await statusWithCookie(proxy.url + '/', cookie), 200, 'valid at first')
  // a client that ignores Max-Age (curl, a script) is refused by the signed expiry
  const since = Date.now()
  await waitFor(async () => await statusWithCookie(proxy.url + '/', cookie) === 403, 5000, 'the expiry', { intervalMs: 100 })
  const waited = Date.now() - since
  t.comment(`refused ${waited} ms after it was valid`)
  const page = await request(proxy.url + '/photos', { headers: { cookie, accept: 'text/html' } })
  t.equal(page.statusCode, 403)
  t.match(await page.body.text(), /<form method="post"/, 'a browser with an expired cookie gets the form again')
})

t.test('a Max-Age under a second is rounded up, never 0 (which deletes the cookie at once)', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_COOKIE_MAX_AGE: '500ms' })
  t.match((await postUnlock(proxy.url, { key: 'k', next: '/' })).setCookie, /; Max-Age=1;/)
})

t.test('altered, truncated, foreign and malformed cookies are refused, and are not guesses', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_MAX_FAILURES: '2' })
  const elsewhere = await startProxy(t, upstream.url, { ACCESS_KEY: 'another-key' })
  const value = ((await postUnlock(proxy.url, { key: 'k', next: '/' })).cookie as string).slice(COOKIE.length + 1)
  const foreign = ((await postUnlock(elsewhere.url, { key: 'another-key', next: '/' })).cookie as string).slice(COOKIE.length + 1)
  const [expiry, signature] = value.split('.')
  const flip = (text: string, at: number): string => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1)
  // the last of 43 base64url characters holds 4 bits and 2 unused ones: its other spellings
  // decode to the same signature, and a strict reader refuses them all
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = signature.at(-1) as string
  const group = Math.floor(alphabet.indexOf(last) / 4) * 4
  const respelled = alphabet.slice(group, group + 4).split('').filter(c => c !== last)
  t.equal(respelled.length, 3)
  for (const c of respelled) t.same(Buffer.from(signature.slice(0, 42) + c, 'base64url'), Buffer.from(signature, 'base64url'), 'decodes the same')

  const forged = [
    `${Number(expiry) + 86_400_000}.${signature}`, // a later expiry with the old signature
    `${flip(expiry, 12)}.${signature}`,
    `${expiry}.${flip(signature, 0)}`,
    `${expiry}.${flip(signature, 42)}`,
    `${expiry}.${signature.slice(0, 42)}`,
    `${expiry}.${signature}A`,
    `${expiry}.`, `.${signature}`, signature, expiry, '',
    `0${expiry}.${signature}`, `+${expiry}.${signature}`, `${expiry}.0.${signature}`,
    `99999999999999999999.${signature}`,
    foreign, // signed properly, with a key this proxy does not have
    ...respelled.map(c => `${expiry}.${signature.slice(0, 42)}${c}`)
  ]
  for (const token of forged) {
    t.equal(await statusWithCookie(proxy.url + '/', `${COOKIE}=${token}`), 403, JSON.stringify(token))
  }
  t.equal(await statusWithCookie(proxy.url + '/', `${COOKIE}=${value}`), 200, 'the genuine cookie still works')
  t.equal(await statusWith(proxy.url + '/', 'k'), 200, `${forged.length} refused cookies started no brake`)
  t.equal(upstream.requests.length, 2)
})
