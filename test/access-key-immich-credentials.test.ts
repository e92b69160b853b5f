// ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS (default true): a request carrying a session token or API
// key that Immich confirms passes the gate without the access key, in every form Immich reads
// (test/fixtures/immich-auth.json), through the proxy's own pool, one question per credential
// at a time, remembered under a hash; unknown ones are refused and braked; Immich down is a 502.
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io } from 'socket.io-client'
import { request } from 'undici'
import Fastify from 'fastify'
import { startProxy, startUpstream } from './helper.js'
import { immichStandIn } from './helpers/immich.js'
import { within } from './helpers/wait.js'
import { accessKey, bodyLimit, forwardedHeaders, proxy, tls, websocket } from '../src/index.js'

const SESSION = 'session-token-0123456789'
const API_KEY = 'api-key-0123456789'

async function guarded (t: Test, env: Record<string, string> = {}) {
  const immich = immichStandIn({ sessions: new Set([SESSION]), apiKeys: new Map([[API_KEY, ['all']], ['limited-key', ['asset.upload']]]) })
  const upstream = await startUpstream(t, immich.handler)
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'the-access-key', ...env })
  return { immich: immich.state, upstream, proxy }
}

t.test('every form Immich reads passes when valid and reaches Immich untouched; invalid ones get 403', async t => {
  const { immich, proxy } = await guarded(t)
  const forms: Array<[string, (value: string) => { path?: string, headers?: Record<string, string> }, string]> = [
    ['x-immich-user-token', v => ({ headers: { 'x-immich-user-token': v } }), SESSION],
    ['x-immich-session-token', v => ({ headers: { 'x-immich-session-token': v } }), SESSION],
    ['Authorization: Bearer', v => ({ headers: { authorization: `Bearer ${v}` } }), SESSION],
    ['cookie immich_access_token', v => ({ headers: { cookie: `immich_is_authenticated=true; immich_access_token=${v}` } }), SESSION],
    ['?sessionKey=', v => ({ path: `?sessionKey=${v}` }), SESSION],
    ['x-api-key', v => ({ headers: { 'x-api-key': v } }), API_KEY],
    ['?apiKey=', v => ({ path: `?apiKey=${v}` }), API_KEY],
    ['x-api-key limited to some permissions', v => ({ headers: { 'x-api-key': v } }), 'limited-key']
  ]
  for (const [name, form, valid] of forms) {
    const good = form(valid)
    const seenBefore = immich.seen.length
    const res = await request(`${proxy.url}/api/albums${good.path ?? ''}`, { headers: good.headers })
    t.equal(res.statusCode, 200, `${name}: a valid one passes`)
    await res.body.dump()
    const forwarded = immich.seen.slice(seenBefore).find(r => r.url.startsWith('/api/albums'))
    t.ok(forwarded, `${name}: Immich got the request`)
    for (const [header, value] of Object.entries(good.headers ?? {})) t.equal(forwarded?.headers[header], value, `${name}: ${header} reached Immich untouched`)

    const bad = form('not-a-valid-token')
    const refused = await request(`${proxy.url}/api/albums${bad.path ?? ''}`, { headers: bad.headers })
    t.equal(refused.statusCode, 403, `${name}: an unknown one is refused`)
    t.match(await refused.body.json(), { statusCode: 403 })
  }
  t.notOk(immich.seen.some(r => r.url.startsWith('/api/albums') && JSON.stringify(r.headers).includes('not-a-valid-token')), 'no refused request reached Immich')
})

t.test('no credential at all: 403 without asking Immich; the UI hint cookie is not a credential', async t => {
  const { immich, proxy } = await guarded(t)
  for (const headers of [{}, { cookie: 'immich_is_authenticated=true; immich_auth_type=password' }, { authorization: 'Basic dXNlcjpwYXNz' }]) {
    const res = await request(`${proxy.url}/api/albums`, { headers })
    t.equal(res.statusCode, 403, JSON.stringify(headers))
    await res.body.dump()
  }
  t.equal(immich.validations, 0, 'Immich was never asked')
})

t.test('a share key goes first, as in Immich: a session beside it is not looked at', async t => {
  const { immich, proxy } = await guarded(t)
  const res = await request(`${proxy.url}/api/albums?key=some-share-key`, { headers: { 'x-immich-user-token': SESSION } })
  t.equal(res.statusCode, 403)
  await res.body.dump()
  t.equal(immich.validations, 0)
})

t.test('100 concurrent requests with one credential: one question to Immich; then remembered', async t => {
  const { immich, proxy } = await guarded(t)
  const answers = await Promise.all(Array.from({ length: 100 }, async () => {
    const res = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': API_KEY } })
    await res.body.dump()
    return res.statusCode
  }))
  t.same(new Set(answers), new Set([200]), 'all 100 passed')
  t.equal(immich.validations, 1, 'validateToken was asked once')
  const again = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': API_KEY } })
  await again.body.dump()
  t.equal(immich.validations, 1, 'and not again while remembered')
})

t.test('unknown credentials count for the brake, each once; the same stale one does not lock a browser out', async t => {
  const { immich, proxy } = await guarded(t, { ACCESS_KEY_MAX_FAILURES: '3' })
  for (let i = 0; i < 10; i++) {
    const res = await request(`${proxy.url}/api/albums`, { headers: { cookie: 'immich_access_token=revoked-elsewhere' } })
    t.equal(res.statusCode, 403, `stale cookie, request ${i + 1}: 403, not 429`)
    await res.body.dump()
  }
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const res = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': `guess-${i}` } })
    statuses.push(res.statusCode)
    await res.body.dump()
  }
  t.same(statuses, [403, 403, 429, 429], 'the third new guess (with the stale cookie, four failures) starts the cool-down')
  const asked = immich.validations
  const braked = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': API_KEY } })
  t.equal(braked.statusCode, 429, 'during the cool-down even a valid credential waits')
  await braked.body.dump()
  t.equal(immich.validations, asked, 'and Immich is not asked')
})

t.test('Immich unable to answer: 502 with the usual JSON, not a refusal, nothing remembered', async t => {
  const { immich, proxy } = await guarded(t, { ACCESS_KEY_MAX_FAILURES: '1' })
  immich.validateTokenStatus = 500
  for (let i = 0; i < 3; i++) {
    const res = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': API_KEY } })
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { statusCode: 502, error: 'Bad Gateway' })
  }
  t.equal(immich.validations, 3, 'asked each time: a failure is not remembered')
  immich.validateTokenStatus = undefined
  const res = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': API_KEY } })
  t.equal(res.statusCode, 200, 'not braked by the failures, and passes once Immich answers')
  await res.body.dump()
})

t.test('something other than Immich answering 200 to everything opens nothing', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.setHeader('content-type', 'text/html'); res.end('<html>index</html>') })
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k' })
  const res = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': 'anything' } })
  t.equal(res.statusCode, 502)
  await res.body.dump()
  t.notOk(upstream.requests.some(r => r.url === '/api/albums'))
})

t.test('ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS=false: only the access key opens', async t => {
  const { immich, proxy } = await guarded(t, { ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS: 'false' })
  const res = await request(`${proxy.url}/api/albums`, { headers: { 'x-api-key': API_KEY } })
  t.equal(res.statusCode, 403)
  await res.body.dump()
  t.equal(immich.validations, 0)
})

t.test('a browser: logged in to Immich it passes on its cookie; not logged in it gets the unlock page', async t => {
  const { proxy } = await guarded(t)
  const page = { accept: 'text/html,application/xhtml+xml' }
  const loggedIn = await request(`${proxy.url}/photos`, { headers: { ...page, cookie: `immich_access_token=${SESSION}; immich_is_authenticated=true` } })
  t.equal(loggedIn.statusCode, 200)
  await loggedIn.body.dump()
  const stranger = await request(`${proxy.url}/photos`, { headers: page })
  t.equal(stranger.statusCode, 403)
  t.match(await stranger.body.text(), /<form/)
})

t.test('a socket.io connection authenticated by its session cookie passes', async t => {
  const http = createServer()
  const server = new Server(http, { path: '/api/socket.io', transports: ['websocket'] })
  const immich = immichStandIn({ sessions: new Set([SESSION]) })
  http.on('request', immich.handler)
  const cookies: unknown[] = []
  server.on('connection', socket => { cookies.push(socket.handshake.headers.cookie) })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await server.close() })
  const proxy = await startProxy(t, `http://127.0.0.1:${(http.address() as AddressInfo).port}`, { ACCESS_KEY: 'k' })

  const connect = async (cookie: string): Promise<string> => {
    const client = io(proxy.url, { path: '/api/socket.io', transports: ['websocket'], reconnection: false, extraHeaders: { cookie } })
    t.teardown(() => { client.disconnect() })
    return await within(new Promise<string>(resolve => {
      client.once('connect', () => resolve('connected'))
      client.once('connect_error', error => resolve(`refused: ${error.message}`))
    }), 5000, 'socket.io to connect or fail')
  }
  t.equal(await connect(`immich_access_token=${SESSION}`), 'connected')
  t.same(cookies, [`immich_access_token=${SESSION}`], 'the cookie reached the gateway')
  t.match(await connect('immich_access_token=wrong'), /^refused/)
  t.equal(cookies.length, 1, 'the refused one never reached it')
})

t.test('embedded: a revoked credential stops passing once its verdict expires', async t => {
  const immich = immichStandIn({ sessions: new Set([SESSION]) })
  const upstream = await startUpstream(t, immich.handler)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tls)
  await app.register(forwardedHeaders)
  await app.register(accessKey, { accessKeys: ['k'], immich: { upstream: upstream.url }, credentialCheck: { validFor: 300, invalidFor: 100 } })
  await app.register(bodyLimit)
  await app.register(websocket, { upstream: upstream.url })
  await app.register(proxy, { upstream: upstream.url })
  const ask = async (): Promise<number> => (await app.inject({ url: '/api/albums', headers: { 'x-immich-user-token': SESSION } })).statusCode
  t.equal(await ask(), 200)
  immich.state.sessions.delete(SESSION)
  t.equal(await ask(), 401, 'still remembered as valid: the gate lets it by and Immich itself answers 401')
  t.equal(immich.state.validations, 1)
  await new Promise(resolve => setTimeout(resolve, 350))
  t.equal(await ask(), 403, 'refused by the gate once the verdict expired')
})

t.test('embedded: allowImmichCredentials without a way to reach Immich is an error at registration', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tls)
  await app.register(forwardedHeaders)
  await t.rejects(async () => { await app.register(accessKey, { accessKeys: ['k'], allowImmichCredentials: true }) }, /needs the `immich` option/)
})

t.test('at LOG_LEVEL=trace no session token or API key appears in the log, valid or not, header or query', async t => {
  const { proxy } = await guarded(t, { LOG_LEVEL: 'trace' })
  for (const [path, headers] of [
    ['/api/albums', { 'x-api-key': API_KEY }], ['/api/albums', { cookie: `immich_access_token=${SESSION}` }],
    [`/api/albums?apiKey=${API_KEY}`, {}], [`/api/albums?sessionKey=${SESSION}`, {}], ['/api/albums', { authorization: 'Bearer unknown-bearer-token-42' }]
  ] as Array<[string, Record<string, string>]>) {
    const res = await request(proxy.url + path, { headers })
    await res.body.dump()
  }
  t.ok(proxy.log.lines.length > 5, `the proxy logged (${proxy.log.lines.length} lines)`)
  for (const secret of [API_KEY, SESSION, 'unknown-bearer-token-42']) t.notMatch(proxy.log.text, secret, `${secret.slice(0, 8)}… is not in the log`)
})
