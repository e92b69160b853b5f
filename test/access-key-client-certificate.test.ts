// TLS_CLIENT_CA_FILE: a client certificate signed by that CA opens the access gate (mTLS, which
// the Immich mobile app supports) over HTTP/1.1, HTTP/2 and WebSocket upgrades; without an access
// key it is required. The certificate is requested, never required in the handshake, so a client
// without one is refused with an HTTP 403 it can read, not a handshake failure.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { connect as http2Connect } from 'node:http2'
import { Agent as HttpsAgent, get as httpsGet } from 'node:https'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import { startProxy, startUpstream, type Proxy } from './helper.js'
import { startWebApp } from './helpers/access-key.js'
import { immichStandIn } from './helpers/immich.js'
import { runServer } from './helpers/ops.js'
import { h2Request, handshake, makeCa, makeCertificate, makeClientCertificate, writeCertificateFiles } from './helpers/tls.js'
import { waitFor, within } from './helpers/wait.js'

type Identity = { cert: string, key: string } | undefined

const DAY = 24 * 3600 * 1000
const RELOAD_WITHIN_MS = 15_000

interface Answer {
  status: number
  contentType: string
  body: string
}

/** One HTTP/1.1 request on a fresh connection, presenting `identity` (none when undefined). */
async function overHttp1 (proxy: Proxy, ca: string, identity: Identity, path = '/api/assets', headers: Record<string, string> = {}): Promise<Answer> {
  const agent = new Agent({ connect: { ca, servername: 'localhost', ...identity } })
  try {
    const response = await request(`${proxy.url}${path}`, { dispatcher: agent, headers })
    return { status: response.statusCode, contentType: String(response.headers['content-type']), body: await response.body.text() }
  } finally {
    await agent.close()
  }
}

/**
 * One HTTP/1.1 request through `agent` on a new connection (no keep-alive), which resumes the TLS
 * session the agent cached from its previous one; also whether it was resumed.
 */
async function resumed (proxy: Proxy, agent: HttpsAgent): Promise<{ status: number, reused: boolean }> {
  const req = httpsGet(`${proxy.url}/api/assets`, { agent, servername: 'localhost' })
  const [response] = await once(req, 'response')
  response.resume()
  await once(response, 'end')
  return { status: response.statusCode, reused: (req.socket as TLSSocket).isSessionReused() }
}

/** One HTTP/2 request on a fresh session (checked to be h2), presenting `identity`. */
async function overHttp2 (t: Test, proxy: Proxy, ca: string, identity: Identity): Promise<Answer> {
  const session = http2Connect(proxy.url, { ca, servername: 'localhost', ...identity })
  try {
    await once(session, 'remoteSettings')
    t.equal(session.alpnProtocol, 'h2', 'the client speaks HTTP/2')
    const answer = await h2Request(session, { ':method': 'GET', ':path': '/api/assets' })
    return { status: answer.status, contentType: String(answer.headers['content-type']), body: answer.body.toString() }
  } finally {
    session.destroy()
  }
}

/** A wss:// handshake presenting `identity`: 'echoed' when the tunnel opened and echoes, else the refusal's status. */
async function overWebSocket (proxy: Proxy, ca: string, identity: Identity): Promise<'echoed' | number> {
  const ws = new WebSocket(`wss://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, { ca, ...identity })
  try {
    const outcome = await within(new Promise<'open' | number>((resolve, reject) => {
      ws.once('open', () => resolve('open'))
      ws.once('unexpected-response', (req, res) => resolve(res.statusCode ?? 0))
      ws.once('error', reject)
    }), 5000, 'the wss handshake')
    if (outcome !== 'open') return outcome
    ws.send('hello')
    const [data] = await within(once(ws, 'message'), 5000, 'the echo') as [Buffer]
    return data.toString() === 'hello' ? 'echoed' : -1
  } finally {
    ws.terminate()
  }
}

interface Setup {
  proxy: Proxy
  /** What the client trusts for the server's certificate. */
  serverCa: string
  caFile: string
  ca: { cert: string, key: string }
  upgrades: () => number
  requests: () => number
}

/** The web-app stand-in behind a TLS proxy with TLS_CLIENT_CA_FILE set to a fresh CA's. */
async function setup (t: Test, env: Record<string, string> = {}): Promise<Setup> {
  const [server, ca] = await Promise.all([makeCertificate(), makeCa()])
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, server)
  const caFile = join(dir, 'clients-ca.pem')
  writeFileSync(caFile, ca.cert)
  const app = await startWebApp(t, '<html>Immich</html>')
  const proxy = await startProxy(t, app.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, TLS_CLIENT_CA_FILE: caFile, ...env })
  return { proxy, serverCa: server.cert, caFile, ca, upgrades: app.upgrades, requests: () => app.requests.length }
}

t.test('without an access key, a certificate from the client CA passes over HTTP/1.1, HTTP/2 and a WebSocket upgrade', async t => {
  const s = await setup(t)
  const phone = await makeClientCertificate(s.ca)

  const h1 = await overHttp1(s.proxy, s.serverCa, phone)
  t.equal(h1.status, 200, 'HTTP/1.1')
  t.same(JSON.parse(h1.body).url, '/api/assets', 'Immich answered')
  const h2 = await overHttp2(t, s.proxy, s.serverCa, phone)
  t.equal(h2.status, 200, 'HTTP/2')
  t.same(JSON.parse(h2.body).url, '/api/assets')
  t.equal(await overWebSocket(s.proxy, s.serverCa, phone), 'echoed', 'the WebSocket is tunnelled to Immich')
  t.equal(s.upgrades(), 1)
  t.equal(s.requests(), 2)
})

t.test('a certificate from another CA, an expired one, or none gets 403 on every protocol; the handshake completes', async t => {
  const s = await setup(t)
  const stranger = await makeClientCertificate(await makeCa('Another CA'))
  const expired = await makeClientCertificate(s.ca, 'old phone', { notBeforeDate: new Date(Date.now() - 60 * DAY), notAfterDate: new Date(Date.now() - DAY) })

  for (const [name, identity] of [['another CA', stranger], ['expired', expired], ['no certificate', undefined]] as const) {
    const h1 = await overHttp1(s.proxy, s.serverCa, identity)
    t.equal(h1.status, 403, `${name}: HTTP/1.1 403`)
    t.match(JSON.parse(h1.body), { statusCode: 403, code: 'IMMICH_PROXY_CLIENT_CERTIFICATE', message: 'A valid client certificate is required' })
    t.equal((await overHttp2(t, s.proxy, s.serverCa, identity)).status, 403, `${name}: HTTP/2 403`)
    t.equal(await overWebSocket(s.proxy, s.serverCa, identity), 403, `${name}: the upgrade gets 403`)
  }
  t.equal(s.requests(), 0, 'nothing reached Immich')
  t.equal(s.upgrades(), 0)

  // a client that has no certificate at all is not cut off in the handshake
  const shaken = await handshake(s.proxy.port, { ca: s.serverCa, rejectUnauthorized: true })
  t.equal(shaken.protocol, 'TLSv1.3', 'the handshake without a certificate completes')

  const page = await overHttp1(s.proxy, s.serverCa, undefined, '/photos', { accept: 'text/html' })
  t.equal(page.status, 403, 'a browser without a certificate gets 403')
  t.match(page.contentType, /^text\/html/)
  t.match(page.body, /Client certificate required/, 'a page saying what is missing')
  t.notMatch(page.body, /<form/, 'no unlock form: there is no key to type')

  // no key is set: the unlock form does not exist, and an X-Access-Key header opens nothing
  const unlock = await overHttp1(s.proxy, s.serverCa, undefined, '/.immich-proxy/unlock', { 'x-access-key': 'anything' })
  t.equal(unlock.status, 403)
  t.equal(s.requests(), 0)
})

t.test('with ACCESS_KEY also set, the key passes without a certificate and the certificate without the key', async t => {
  const s = await setup(t, { ACCESS_KEY: 'the-key' })
  const phone = await makeClientCertificate(s.ca)
  t.equal((await overHttp1(s.proxy, s.serverCa, undefined, '/api/assets', { 'x-access-key': 'the-key' })).status, 200, 'the key, no certificate')
  t.equal((await overHttp1(s.proxy, s.serverCa, phone)).status, 200, 'the certificate, no key')
  const refused = await overHttp1(s.proxy, s.serverCa, undefined)
  t.equal(refused.status, 403, 'neither')
  t.match(JSON.parse(refused.body), { code: 'IMMICH_PROXY_ACCESS_KEY' }, 'asks for the key, which can be typed')
  const page = await overHttp1(s.proxy, s.serverCa, undefined, '/photos', { accept: 'text/html' })
  t.match(page.body, /<form/, 'a browser without a certificate gets the unlock form')
  t.equal(s.requests(), 2)
})

t.test('the client certificate is not braked: a cool-down does not stop it', async t => {
  const s = await setup(t, { ACCESS_KEY: 'the-key', ACCESS_KEY_MAX_FAILURES: '1' })
  const phone = await makeClientCertificate(s.ca)
  t.equal((await overHttp1(s.proxy, s.serverCa, undefined, '/api/assets', { 'x-access-key': 'guess' })).status, 403, 'a wrong key')
  t.equal((await overHttp1(s.proxy, s.serverCa, undefined, '/api/assets', { 'x-access-key': 'the-key' })).status, 429, 'this address is cooling down, the right key included')
  t.equal((await overHttp1(s.proxy, s.serverCa, phone)).status, 200, 'the certificate from the same address passes')
  t.equal(await overWebSocket(s.proxy, s.serverCa, phone), 'echoed', 'and so does its WebSocket')
})

t.test('without an access key, an Immich credential still passes without a certificate (ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS)', async t => {
  const [server, ca] = await Promise.all([makeCertificate(), makeCa()])
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, server)
  const caFile = join(dir, 'clients-ca.pem')
  writeFileSync(caFile, ca.cert)
  const immich = immichStandIn({ apiKeys: new Map([['api-key-1', ['all']]]) })
  const upstream = await startUpstream(t, immich.handler)
  const env = { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, TLS_CLIENT_CA_FILE: caFile }
  const proxy = await startProxy(t, upstream.url, env)
  t.equal((await overHttp1(proxy, server.cert, undefined, '/api/users/me', { 'x-api-key': 'api-key-1' })).status, 200, 'a confirmed API key')
  t.equal((await overHttp1(proxy, server.cert, undefined, '/api/users/me', { 'x-api-key': 'unknown' })).status, 403, 'an unknown one')

  const strict = await startProxy(t, upstream.url, { ...env, ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS: 'false' })
  t.equal((await overHttp1(strict, server.cert, undefined, '/api/users/me', { 'x-api-key': 'api-key-1' })).status, 403, 'false: the certificate alone opens')
  t.equal((await overHttp1(strict, server.cert, await makeClientCertificate(ca), '/api/users/me', { 'x-api-key': 'api-key-1' })).status, 200)
})

t.test('a replaced CA file decides which certificates pass, without a restart; a bad one is refused and logged', async t => {
  const s = await setup(t, { LOG_LEVEL: 'info' })
  const caB = await makeCa('CA B')
  const [phoneA, phoneB] = await Promise.all([makeClientCertificate(s.ca, 'phone A'), makeClientCertificate(caB, 'phone B')])
  t.equal((await overHttp1(s.proxy, s.serverCa, phoneA)).status, 200, 'A passes at start')
  t.equal((await overHttp1(s.proxy, s.serverCa, phoneB)).status, 403, 'B does not')
  // A's client keeps its TLS session for resumption, as clients do
  const agentA = new HttpsAgent({ ca: s.serverCa, ...phoneA, keepAlive: false })
  t.teardown(() => agentA.destroy())
  t.equal((await resumed(s.proxy, agentA)).status, 200)
  t.same(await resumed(s.proxy, agentA), { status: 200, reused: true }, 'its next connection resumes the session')

  writeFileSync(s.caFile, caB.cert)
  await waitFor(async () => (await overHttp1(s.proxy, s.serverCa, phoneB)).status === 200, RELOAD_WITHIN_MS, 'B to pass', { intervalMs: 200 })
  t.equal((await overHttp1(s.proxy, s.serverCa, phoneA)).status, 403, 'A no longer passes on a new connection')
  t.same(await resumed(s.proxy, agentA), { status: 403, reused: false }, 'nor by resuming a session from before: it handshakes again against B')
  t.equal(s.proxy.log.find(30, /^client CA file reloaded/).length, 1, 'the reload is logged')
  t.equal((await overHttp2(t, s.proxy, s.serverCa, phoneB)).status, 200, 'over HTTP/2 too')

  writeFileSync(s.caFile, 'half a file\n')
  await waitFor(() => s.proxy.log.find(50, /^new client CA file refused/).length === 1, RELOAD_WITHIN_MS, 'the bad file to be refused', { intervalMs: 200 })
  t.equal((await overHttp1(s.proxy, s.serverCa, phoneB)).status, 200, 'the previous CA stays in service')
  t.equal((await overHttp1(s.proxy, s.serverCa, phoneA)).status, 403)
})

t.test('the server certificate reloaded keeps the client CA', async t => {
  const s = await setup(t, { LOG_LEVEL: 'info' })
  const phone = await makeClientCertificate(s.ca)
  const renewed = await makeCertificate('renewed.immich.test')
  writeCertificateFiles(join(s.caFile, '..'), renewed)
  await waitFor(async () => (await handshake(s.proxy.port)).fingerprint256 === renewed.fingerprint256, RELOAD_WITHIN_MS, 'the renewed certificate', { intervalMs: 200 })
  t.equal((await overHttp1(s.proxy, renewed.cert, phone)).status, 200, 'the certificate still passes')
  t.equal((await overHttp1(s.proxy, renewed.cert, undefined)).status, 403, 'and none is still refused')
})

t.test('start-up errors name TLS_CLIENT_CA_FILE', async t => {
  const [server, ca] = await Promise.all([makeCertificate(), makeCa()])
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, server)
  const missing = join(dir, 'missing.pem')
  const notPem = join(dir, 'not.pem')
  writeFileSync(notPem, 'not a certificate\n')
  mkdirSync(join(dir, 'ca'))
  const caFile = join(dir, 'ca', 'clients-ca.pem')
  writeFileSync(caFile, ca.cert)
  const base = { HOST: '127.0.0.1', PORT: '1', ADMIN_PORT: 'off', UPSTREAM_URL: 'http://127.0.0.1:2283' }

  const [unreadable, withoutTls] = await Promise.all([
    runServer({ ...base, TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, TLS_CLIENT_CA_FILE: missing }),
    runServer({ ...base, TLS_CLIENT_CA_FILE: caFile })
  ])
  t.same(unreadable, { code: 1, stdout: '', stderr: `immich-proxy: TLS_CLIENT_CA_FILE: cannot read "${missing}" (ENOENT)\n` }, 'a missing file')
  t.same(withoutTls, {
    code: 1,
    stdout: '',
    stderr: `immich-proxy: TLS_CLIENT_CA_FILE="${caFile}" is set without TLS; client certificates come with the TLS handshake, so set TLS_CERT_FILE/TLS_KEY_FILE, TLS_SELF_SIGNED=true or ACME_DOMAINS, e.g. TLS_CLIENT_CA_FILE=/certs/clients-ca.pem\n`
  }, 'TLS off')

  const upstream = await startUpstream(t, (req, res) => res.end())
  const tls = { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile }
  await t.rejects(startProxy(t, upstream.url, { ...tls, TLS_CLIENT_CA_FILE: notPem }), { message: `TLS_CLIENT_CA_FILE: "${notPem}" holds no PEM certificate` })
  await t.rejects(startProxy(t, upstream.url, { ...tls, TLS_CLIENT_CA_FILE: files.certFile }),
    { message: `TLS_CLIENT_CA_FILE: "${files.certFile}" holds a certificate that is not a CA (CN=immich.test)` }, 'a server certificate given by mistake')
  const empty = join(dir, 'empty.pem')
  writeFileSync(empty, '')
  await t.rejects(startProxy(t, upstream.url, { ...tls, TLS_CLIENT_CA_FILE: empty }), { message: /^TLS_CLIENT_CA_FILE: .* holds no PEM certificate$/ })
})
