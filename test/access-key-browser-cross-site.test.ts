// Another site cannot make a visitor's browser lock the visitor's address out: Chromium from npm
// (driven by playwright-core) opens a page on another origin that posts wrong keys to the unlock
// form with no-cors fetches and then an auto-submitting form. The proxy sees them all, refuses
// them, and counts none: the right key still works afterwards.
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { startProxy, startUpstream } from './helper.js'
import { UNLOCK, statusWith } from './helpers/access-key.js'
import { launchBrowser } from './helpers/browser.js'

const KEY = 'family-key-Vw83'
const GUESSES = 5

t.test('a page on another origin posting wrong keys to the unlock form starts no brake', async t => {
  const immich = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, immich.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '3' })
  // localhost and 127.0.0.1 are different sites to a browser
  const target = `http://localhost:${proxy.port}${UNLOCK}`
  const posts: Array<{ origin?: string, site?: string }> = []
  proxy.app.server.on('request', (req: IncomingMessage) => {
    if (req.method === 'POST') posts.push({ origin: req.headers.origin, site: req.headers['sec-fetch-site'] as string | undefined })
  })

  const evil = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html>
<html><head><meta charset="utf-8"><title>cats</title></head><body>
<form id="f" method="post" action="${target}"><input name="key" value="form-guess"><input name="next" value="/"></form>
<script>
const guesses = []
for (let i = 0; i < ${GUESSES}; i++) {
  guesses.push(fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', body: new URLSearchParams({ key: 'guess-' + i, next: '/' }) }))
}
Promise.allSettled(guesses).then(() => document.getElementById('f').submit())
</script></body></html>`)
  })

  const context = await launchBrowser(t)
  const page = await context.newPage()
  await Promise.all([page.waitForURL(target), page.goto(evil.url + '/')])

  t.equal(posts.length, GUESSES + 1, `the browser sent ${GUESSES} fetches and the form: ${JSON.stringify(posts)}`)
  t.ok(posts.every(post => post.origin === evil.url), 'each with the other page\'s Origin')
  t.match(await page.content(), /another site/, 'the form\'s post landed on the refusal')
  t.equal(await statusWith(proxy.url + '/api/server/ping', KEY), 200, `${GUESSES + 1} cross-site wrong keys started no brake`)
})
