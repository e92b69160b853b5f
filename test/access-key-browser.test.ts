// The unlock page in a real browser (Chromium from npm, driven by playwright-core): a guarded
// instance becomes usable from the web app. The browser loads a page, gets the form, types a
// wrong key and then the right one, lands back on its page, and that page's fetch and WebSocket
// go through on the cookie alone. Locked out by the brake, it is told how long to wait.
import t from 'tap'
import { startProxy } from './helper.js'
import { COOKIE, startWebApp } from './helpers/access-key.js'
import { launchBrowser } from './helpers/browser.js'

const KEY = 'family-key-Vw83'

// Immich's web app in miniature: a page whose script calls the API and opens a WebSocket to
// the host it was loaded from, and shows what came back.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Immich</title></head>
<body>
<h1>Timeline</h1>
<p id="api">api: waiting</p>
<p id="echo">socket: waiting</p>
<script>
fetch('/api/users/me').then(r => r.json()).then(j => { document.getElementById('api').textContent = 'api cookie: ' + j.cookie })
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/socket.io/?EIO=4&transport=websocket')
ws.onopen = () => ws.send('hello from the browser')
ws.onmessage = event => { document.getElementById('echo').textContent = 'socket: ' + event.data }
ws.onerror = () => { document.getElementById('echo').textContent = 'socket: failed' }
</script>
</body></html>`

for (const scheme of ['https', 'http'] as const) {
  t.test(`${scheme}: form, wrong key, right key, then the page with its API call and WebSocket`, async t => {
    const app = await startWebApp(t, PAGE)
    const proxy = await startProxy(t, app.url, { ACCESS_KEY: KEY, ...(scheme === 'https' ? { TLS_SELF_SIGNED: 'true' } : {}) })
    const versions: string[] = []
    proxy.app.server.on('request', (req: { httpVersion: string }) => versions.push(req.httpVersion))
    const context = await launchBrowser(t, { ignoreHTTPSErrors: true })
    const page = await context.newPage()

    const first = await page.goto(`${proxy.url}/photos?album=7`)
    t.equal(first?.status(), 403)
    t.equal(await page.title(), 'Immich — access key required')
    t.equal(await page.locator('input#key').getAttribute('type'), 'password')
    t.equal(app.requests.length, 0, 'nothing reached Immich yet')
    await page.setViewportSize({ width: 390, height: 844 })
    const box = await page.locator('form').boundingBox()
    t.ok(box !== null && box.x >= 0 && box.x + box.width <= 390, `the form fits a phone's width: ${JSON.stringify(box)}`)

    await page.fill('#key', 'not-the-key')
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')])
    t.equal(await page.locator('p.error').textContent(), 'That key is not valid.')
    t.equal(new URL(page.url()).pathname, '/.immich-proxy/unlock')

    await page.fill('#key', KEY)
    await Promise.all([page.waitForURL(`${proxy.url}/photos?album=7`), page.click('button[type=submit]')])
    await page.locator('#echo', { hasText: 'socket: hello from the browser' }).waitFor()
    await page.locator('#api', { hasText: 'api cookie: ' }).waitFor()
    t.equal(await page.locator('h1').textContent(), 'Timeline', 'the page came from Immich')
    t.equal(await page.locator('#echo').textContent(), 'socket: hello from the browser', 'the WebSocket went through on the cookie')
    t.equal(await page.locator('#api').textContent(), 'api cookie: immich_is_authenticated=true',
      'the API call went through; Immich saw its own cookie and not the proxy\'s')
    t.equal(app.upgrades(), 1)
    // browsers speak HTTP/2 to the TLS listener; the WebSocket is an HTTP/1.1 upgrade beside it
    if (scheme === 'https') t.ok(versions.includes('2.0'), `HTTP/2 was used: ${versions.join(' ')}`)

    const cookie = (await context.cookies(proxy.url)).find(c => c.name === COOKIE)
    t.match(cookie, { path: '/', httpOnly: true, sameSite: 'Lax', secure: scheme === 'https' })
    t.ok(Math.abs((cookie?.expires ?? 0) - (Date.now() / 1000 + 30 * 86_400)) < 120, 'expires in 30 days')
    t.notOk(cookie?.value.includes(KEY), 'the cookie is not the key')
    t.equal(await page.evaluate('document.cookie'), 'immich_is_authenticated=true', 'HttpOnly: the page\'s scripts cannot read it')
  })
}

t.test('locked out after a wrong key: the page shows how long to wait', async t => {
  const app = await startWebApp(t, PAGE)
  const proxy = await startProxy(t, app.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '1' })
  const page = await (await launchBrowser(t)).newPage()
  await page.goto(`${proxy.url}/photos`)
  await page.fill('#key', 'not-the-key')
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')])

  const locked = await page.goto(`${proxy.url}/photos`)
  t.equal(locked?.status(), 429)
  t.equal(await page.title(), 'Immich — access key required')
  t.equal(await page.locator('p.error').textContent(), 'Too many wrong keys from this address; try again in 15 minutes.')
  t.equal(app.requests.length, 0)
})
