// ACCESS_KEY_ALLOW_SHARE_LINKS=true: the requests a shared link's page makes, and only those,
// pass without the access key when Immich confirms the link (plugins/access-key/shared-links.ts
// lists them); a valid link opens nothing else; a password-protected link works after its login.
// Headless Chromium opens a link's page through the guarded proxy and every request succeeds.
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { immichStandIn, type StandInState } from './helpers/immich.js'
import { launchBrowser } from './helpers/browser.js'

const KEY = 'Zm9yLXRoZS1mYW1pbHktb25seS0wMTIzNDU2Nzg5YWJjZGVm'
const LOCKED = 'cGFzc3dvcmQtcHJvdGVjdGVkLWxpbmstMDEyMzQ1Njc4OWFi'
const ASSET = '6a2b1c4e-0000-4000-8000-00000000a551'

async function guarded (t: Test, env: Record<string, string> = { ACCESS_KEY_ALLOW_SHARE_LINKS: 'true' }): Promise<{ immich: StandInState, url: string }> {
  const immich = immichStandIn({
    shareLinks: new Map([[KEY, { id: 'link-1', slug: 'summer-2026', assetId: ASSET }], [LOCKED, { id: 'link-2', password: 'sesame', assetId: ASSET }]])
  })
  const upstream = await startUpstream(t, immich.handler)
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'the-access-key', ...env })
  return { immich: immich.state, url: proxy.url }
}

async function status (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<number> {
  const res = await request(url, { method: init.method as 'GET' | undefined, headers: init.headers, body: init.body })
  await res.body.dump()
  return res.statusCode
}

const html = { accept: 'text/html,application/xhtml+xml' }

t.test('every request on the list passes with a link Immich confirms, and is refused with another', async t => {
  const { url } = await guarded(t)
  const calls: Array<[string, string, string?]> = [
    ['GET', '/share/{key}'],
    ['GET', `/share/{key}/photos/${ASSET}`],
    ['GET', '/api/shared-links/me?key={key}'],
    ['GET', `/api/assets/${ASSET}?key={key}`],
    ['GET', `/api/assets/${ASSET}/thumbnail?key={key}&size=preview`],
    ['GET', `/api/assets/${ASSET}/original?key={key}`],
    ['GET', `/api/assets/${ASSET}/video/playback?key={key}`],
    ['GET', '/api/albums/link-1?key={key}'],
    ['GET', '/api/timeline/buckets?albumId=link-1&key={key}'],
    ['GET', '/api/timeline/bucket?albumId=link-1&timeBucket=2026-07-01&key={key}'],
    ['POST', '/api/download/info?key={key}', '{"assetIds":[]}'],
    ['POST', '/api/download/archive?key={key}', '{"assetIds":[]}']
  ]
  for (const [method, template, body] of calls) {
    const headers = { ...(template.startsWith('/share') ? html : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }
    t.equal(await status(url + template.replace('{key}', KEY), { method, headers, body }), 200, `${method} ${template}: passes with the link's key`)
    t.equal(await status(url + template.replace('{key}', 'bm90LWEtbGluaw'), { method, headers, body }), 403, `${method} ${template}: refused with an unknown key`)
  }
  t.equal(await status(`${url}/api/assets/${ASSET}`, { headers: { 'x-immich-share-key': KEY } }), 200, 'the key in x-immich-share-key, as Immich also reads it')
  t.equal(await status(`${url}/s/summer-2026`, { headers: html }), 200, 'a link by its custom URL')
  t.equal(await status(`${url}/api/shared-links/me?slug=summer-2026`), 200, 'and its API calls with ?slug=')
  t.equal(await status(`${url}/s/winter-2026`, { headers: html }), 403, 'an unknown slug is refused')
  for (const path of ['/_app/immutable/entry/start.js', '/custom.css', '/favicon.ico', '/api/server/config', '/api/server/features', '/api/server/media-types']) {
    t.equal(await status(url + path), 200, `${path}: what every page loads, no link needed`)
  }
})

t.test('a valid link opens nothing outside the list', async t => {
  const { immich, url } = await guarded(t)
  const before = immich.seen.length
  for (const [method, path] of [
    ['GET', '/api/users/me'], ['GET', '/api/assets'], ['GET', '/api/server/about'], ['GET', '/auth/login'], ['GET', '/photos'],
    ['GET', '/api/albums'], ['GET', '/admin/users'], ['DELETE', `/api/assets/${ASSET}`], ['PUT', `/api/assets/${ASSET}`],
    ['GET', `/api/assets/${ASSET}/../../users/me`], ['GET', '/api/people'], ['POST', '/api/auth/login'],
    ['GET', `/share/${KEY}/../../api/users/me`], ['GET', '/api/socket.io/']
  ]) {
    t.equal(await status(`${url}${path}${path.includes('?') ? '&' : '?'}key=${KEY}`, { method }), 403, `${method} ${path}?key=<valid>: refused`)
  }
  t.equal(immich.seen.slice(before).filter(request => !request.url.startsWith('/api/shared-links/me')).length, 0, 'none of them reached Immich')
})

t.test('a password-protected link: its page and the password form work, then the link with its cookie', async t => {
  const { url } = await guarded(t)
  t.equal(await status(`${url}/share/${LOCKED}`, { headers: html }), 200, 'the page of a link that needs a password')
  const me = await request(`${url}/api/shared-links/me?key=${LOCKED}`)
  t.equal(me.statusCode, 401, "Immich's own answer reaches the page, which then shows its password form")
  t.match(await me.body.json(), { message: 'Password required' })
  const login = await request(`${url}/api/shared-links/login?key=${LOCKED}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"password":"sesame"}' })
  t.equal(login.statusCode, 201)
  await login.body.dump()
  const cookie = String(login.headers['set-cookie']).split(';')[0]
  t.equal(await status(`${url}/api/shared-links/me?key=${LOCKED}`, { headers: { cookie } }), 200, 'with the cookie, the link')
})

t.test('with the setting off (the default), a link needs the access key like everything else', async t => {
  const { url } = await guarded(t, {})
  t.equal(await status(`${url}/share/${KEY}`, { headers: html }), 403)
  t.equal(await status(`${url}/api/shared-links/me?key=${KEY}`), 403)
})

t.test('unknown links count for the brake', async t => {
  const { url } = await guarded(t, { ACCESS_KEY_ALLOW_SHARE_LINKS: 'true', ACCESS_KEY_MAX_FAILURES: '2' })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push(await status(`${url}/api/shared-links/me?key=guess${i}`))
  t.same(statuses, [403, 403, 429])
})

t.test('Chromium opens a shared link through the guarded proxy and every request it makes succeeds', async t => {
  const { url } = await guarded(t)
  const context = await launchBrowser(t)
  const page = await context.newPage()
  const failed: string[] = []
  const seen: string[] = []
  page.on('response', response => {
    seen.push(`${response.status()} ${new URL(response.url()).pathname}`)
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`)
  })
  page.on('requestfailed', req => failed.push(`failed ${req.url()}`))
  for (const link of [`/share/${KEY}`, '/s/summer-2026']) {
    const response = await page.goto(url + link)
    t.equal(response?.status(), 200, `${link}: the page`)
    await page.waitForFunction("document.getElementById('state').textContent !== 'loading'", undefined, { timeout: 10_000 })
    t.equal(await page.locator('#state').textContent(), `shown ${ASSET}`, `${link}: the page showed the link's photo`)
  }
  t.same(failed, [], 'no request was refused or failed')
  t.ok(seen.some(line => line.endsWith('/thumbnail')), `the thumbnail was loaded (${seen.length} responses)`)
})
