// During a lock-out a browser's page load gets the unlock page with the wait in words, status 429
// and Retry-After, not the JSON that API clients keep getting; the form posted during the
// lock-out says the same.
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream, type Upstream } from './helper.js'
import { postUnlock, statusWith } from './helpers/access-key.js'
import { waitInWords } from '../plugins/access-key/unlock-page.js'

const KEY = 'the-right-key'
const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }

async function lockedOut (t: Test, env: Record<string, string> = {}): Promise<{ url: string, immich: Upstream }> {
  const immich = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, immich.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2', ...env })
  for (const guess of ['guess-1', 'guess-2']) t.equal(await statusWith(proxy.url + '/', guess), 403, guess)
  return { url: proxy.url, immich }
}

t.test('a page load during the cool-down: 429, Retry-After and the unlock page with the wait', async t => {
  const { url, immich } = await lockedOut(t)
  for (const method of ['GET', 'HEAD'] as const) {
    const page = await request(url + '/photos/abc?at=2024', { method, headers: { ...BROWSER, 'x-access-key': KEY } })
    t.equal(page.statusCode, 429, method)
    t.ok(Number(page.headers['retry-after']) > 890, `Retry-After: ${String(page.headers['retry-after'])} s of the 15 min default`)
    t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
    t.equal(page.headers['cache-control'], 'no-store')
    const html = await page.body.text()
    if (method === 'HEAD') continue
    t.match(html, '<p class="error" role="alert">Too many wrong keys from this address; try again in 15 minutes.</p>')
    t.match(html, '<input type="hidden" name="next" value="/photos/abc?at=2024">', 'back to the same page after the wait')
  }
  t.equal(immich.requests.length, 0)
})

t.test('API clients keep the JSON 429', async t => {
  const { url } = await lockedOut(t)
  for (const [path, headers] of [
    ['/api/server/ping', BROWSER],
    ['/photos', { accept: 'application/json' }],
    ['/photos', {}]
  ] as const) {
    const response = await request(url + path, { headers })
    t.equal(response.statusCode, 429, `${path} ${JSON.stringify(headers)}`)
    t.ok(Number(response.headers['retry-after']) > 890)
    t.match(await response.body.json(), { statusCode: 429, code: 'IMMICH_PROXY_ACCESS_KEY_FAILURES' })
  }
})

t.test('a short cool-down is told in seconds, on the page and after the form', async t => {
  const { url } = await lockedOut(t, { ACCESS_KEY_COOLDOWN: '45s' })
  const page = await request(url + '/', { headers: BROWSER })
  const seconds = String(page.headers['retry-after'])
  t.match(await page.body.text(), `try again in ${seconds} seconds.`)
  const form = await postUnlock(url, { key: KEY, next: '/' })
  t.equal(form.status, 429)
  t.match(form.body, `try again in ${String(form.retryAfter)} seconds.`)
})

t.test('with the unlock page off, a browser gets the JSON 429 too', async t => {
  const { url } = await lockedOut(t, { ACCESS_KEY_COOKIE_MAX_AGE: '0' })
  const response = await request(url + '/photos', { headers: BROWSER })
  t.equal(response.statusCode, 429)
  t.match(await response.body.json(), { code: 'IMMICH_PROXY_ACCESS_KEY_FAILURES' })
})

t.test('the wait in words: rounded up, never shorter than Retry-After', async t => {
  t.same([1, 45, 59, 60, 61, 900, 3599, 3600, 3601, 5400, 7200].map(waitInWords),
    ['1 second', '45 seconds', '59 seconds', '1 minute', '2 minutes', '15 minutes', '1 hour', '1 hour', '1 hour 1 minute',
      '1 hour 30 minutes', '2 hours'])
})
