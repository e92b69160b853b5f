// The key is a password shared by a household: it must not end up in `docker logs`, nor must
// the unlock cookie (a bearer credential for as long as it lives), nor a wrong guess (often a
// near-miss of the real key), at any log level.
import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { keyFile, postUnlock, statusWith } from './helpers/access-key.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const ENV_KEY = 'env-key-Zq81vXw3'
const FILE_KEY = 'file-key-Pm27cLr9'
const GUESS = 'guess-key-Hd55nBt0'

t.test('at LOG_LEVEL=trace, no key, guess or cookie value appears in the proxy\'s log', async t => {
  const upstream = await startWsUpstream(t)
  const html = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, `${FILE_KEY}\n`)
  const env = { ACCESS_KEY: ENV_KEY, ACCESS_KEY_FILE: file.path, ACCESS_KEY_MAX_FAILURES: '3', ACCESS_KEY_COOLDOWN: '1s' }
  const proxy = await startProxy(t, html.url, { LOG_LEVEL: 'trace', ...env })
  const wsProxy = await startProxy(t, upstream.url, { LOG_LEVEL: 'trace', ...env })

  t.equal(await statusWith(proxy.url + '/api/server/ping', ENV_KEY), 200)
  t.equal(await statusWith(proxy.url + '/api/server/ping', FILE_KEY), 200)
  t.equal(await statusWith(proxy.url + '/api/server/ping', GUESS), 403)
  t.equal(await statusWith(proxy.url + '/photos', `${ENV_KEY}x`), 403)

  const page = await request(proxy.url + '/photos?album=1', { headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 403)
  await page.body.dump()
  const unlocked = await postUnlock(proxy.url, { key: FILE_KEY, next: '/photos' })
  t.equal(unlocked.status, 303)
  const cookie = unlocked.cookie as string
  const token = cookie.split('=')[1]
  t.ok(token.length > 40, 'a cookie was set')
  const withCookie = await request(proxy.url + '/photos', { headers: { cookie } })
  t.equal(withCookie.statusCode, 200)
  await withCookie.body.dump()
  t.equal((await postUnlock(proxy.url, { key: GUESS, next: '/' })).status, 403, 'the third guess')
  t.equal((await postUnlock(proxy.url, { key: GUESS, next: '/' })).status, 429, 'the brake')
  await waitFor(async () => await statusWith(proxy.url + '/', ENV_KEY) === 200, 10_000, 'the end of the cool-down', { intervalMs: 100 })

  const ws = await openClient(t, `ws://127.0.0.1:${wsProxy.port}/api/socket.io/?EIO=4&transport=websocket`, [], { headers: { 'x-access-key': ENV_KEY } })
  ws.send('ping')
  await within(once(ws, 'message'), 5000, 'the echo')
  ws.close()

  // a reload is logged too
  file.write(`${FILE_KEY}\nanother-key\n`)
  await waitFor(() => proxy.log.text.includes('access key file reloaded'), 10_000, 'the reload to be logged', { intervalMs: 100 })

  const log = proxy.log.text + wsProxy.log.text
  t.match(log, /"path":"\/api\/server\/ping"/, 'requests were logged (the capture works)')
  t.match(log, /"status":403/)
  t.match(log, /"level":40,.*"client":"127\.0\.0\.1","msg":"too many wrong access keys/, 'the brake names the client')
  for (const secret of [ENV_KEY, FILE_KEY, GUESS, token, 'another-key']) {
    t.notOk(log.includes(secret), `${secret.slice(0, 10)}… is absent`)
  }
  // and not in an escaped or encoded form either
  for (const secret of [ENV_KEY, FILE_KEY, GUESS]) {
    t.notOk(log.includes(encodeURIComponent(secret).slice(0, 12)) || log.includes(Buffer.from(secret).toString('base64').slice(0, 12)), `${secret.slice(0, 10)}… not encoded either`)
  }
})
