// Over HTTPS the unlock cookie is also Secure (never sent over plain HTTP, where anyone on the
// LAN could read it), and it admits requests over HTTP/1.1 and HTTP/2 and wss upgrades alike.
// Behind a trusted TLS-terminating proxy, its X-Forwarded-Proto decides.
import t from 'tap'
import { once } from 'node:events'
import { Agent, request } from 'undici'
import { startProxy } from './helper.js'
import { postUnlock, startWebApp } from './helpers/access-key.js'
import { openClient } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

const KEY = 'tls-key-8Hq2'

t.test('HTTPS: the cookie is Secure and admits HTTP/1.1, HTTP/2 and wss', async t => {
  const app = await startWebApp(t, '<p>timeline</p>')
  const proxy = await startProxy(t, app.url, { TLS_SELF_SIGNED: 'true', ACCESS_KEY: KEY })
  const h1 = new Agent({ connect: { rejectUnauthorized: false } })
  const h2 = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } })
  t.teardown(async () => await Promise.all([h1.close(), h2.close()]))
  const versions: string[] = []
  proxy.app.server.on('request', (req: { httpVersion: string }) => versions.push(req.httpVersion))

  for (const [name, dispatcher] of [['HTTP/1.1', h1], ['HTTP/2', h2]] as const) {
    const page = await request(proxy.url + '/photos', { dispatcher, headers: { accept: 'text/html' } })
    t.equal(page.statusCode, 403, `${name}: the form first`)
    t.match(await page.body.text(), /<form method="post"/)

    const answer = await postUnlock(proxy.url, { key: KEY, next: '/photos' }, dispatcher)
    t.equal(answer.status, 303, name)
    t.same((answer.setCookie as string).split('; ').slice(1).sort(), ['HttpOnly', 'Max-Age=2592000', 'Path=/', 'SameSite=Lax', 'Secure'], `${name}: Secure over TLS`)

    const admitted = await request(proxy.url + '/photos', { dispatcher, headers: { accept: 'text/html', cookie: answer.cookie as string } })
    t.equal(admitted.statusCode, 200, `${name}: the cookie admits`)
    t.equal(await admitted.body.text(), '<p>timeline</p>')
  }

  t.same(versions, ['1.1', '1.1', '1.1', '2.0', '2.0', '2.0'], 'both protocols were spoken')

  const cookie = (await postUnlock(proxy.url, { key: KEY, next: '/' }, h1)).cookie as string
  const ws = await openClient(t, `wss://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, [], { rejectUnauthorized: false, headers: { cookie } })
  ws.send('over wss')
  t.equal(String((await within(once(ws, 'message'), 5000, 'the echo'))[0]), 'over wss')
  t.equal(app.upgrades(), 1)
})

t.test('plain HTTP behind a trusted TLS proxy: Secure when it says https, not when an untrusted client does', async t => {
  const app = await startWebApp(t, '<p>timeline</p>')
  const trusting = await startProxy(t, app.url, { ACCESS_KEY: KEY, TRUST_PROXY: 'loopback' })
  const untrusting = await startProxy(t, app.url, { ACCESS_KEY: KEY })
  const post = async (url: string): Promise<string> => {
    const response = await request(url + '/.immich-proxy/unlock', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
      body: new URLSearchParams({ key: KEY, next: '/' }).toString()
    })
    await response.body.dump()
    t.equal(response.statusCode, 303)
    return response.headers['set-cookie'] as string
  }
  t.match(await post(trusting.url), /; Secure$/)
  t.notMatch(await post(untrusting.url), /Secure/)
})
