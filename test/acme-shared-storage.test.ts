// Several proxies on one ACME_STORAGE (a shared volume) order once: a lock file with a lease
// (plugins/tls/storage-lock.ts) lets one order while the others wait, then serve what it stored.
// A lock left by a process that died is taken over once stale. The challenges in progress are in
// the storage too, so that any of the proxies answers the CA.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { AcmeChallenges, caFolder } from '../plugins/tls/acme.js'
import { STALE_MS } from '../plugins/tls/storage-lock.js'
import { startUpstream } from './helper.js'
import { startListeners, temporaryDirectory } from './helpers/ops.js'
import { fileModes, getTrusted, startPebble, waitIssued, writeDnsHook } from './helpers/pebble.js'
import { handshake, makeCertificate } from './helpers/tls.js'
import { closedPort } from './helpers/websocket.js'

const DOMAIN = 'photos.example.test'

t.test('three proxies started together on one storage: one order, the same certificate served by all', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const pebble = await startPebble(t)
  const dir = temporaryDirectory(t, 'immich-proxy-shared-')
  const { hook } = writeDnsHook(dir, pebble.dnsManagement)
  const settings = { ACME_DOMAINS: DOMAIN, ACME_DNS_HOOK: hook, ACME_DIRECTORY: pebble.directory, ACME_CA_FILE: pebble.caFile, ACME_STORAGE: join(dir, 'acme') }

  const proxies = await Promise.all([1, 2, 3].map(async () => await startListeners(t, upstream.url, settings)))
  for (const proxy of proxies) await waitIssued(t, proxy, pebble)
  const root = await pebble.root()
  const served = await Promise.all(proxies.map(async proxy => (await getTrusted(proxy.port, DOMAIN, root)).certificate.fingerprint256))
  t.equal(new Set(served).size, 1, 'every proxy serves the same certificate')
  t.equal(pebble.orders(), 1, 'one order for the three')
  t.notOk(fileModes(join(dir, 'acme')).some(({ file }) => file.endsWith('order.lock')), 'the lock is gone once the order is done')
})

t.test('a lock left by a proxy that died is taken over once stale', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const pebble = await startPebble(t)
  const dir = temporaryDirectory(t, 'immich-proxy-shared-')
  const { hook } = writeDnsHook(dir, pebble.dnsManagement)
  const storage = join(dir, 'acme')
  const folder = caFolder({ storage, directory: pebble.directory })
  mkdirSync(folder, { recursive: true })
  // refreshed 2 s short of stale: the proxy waits about 2 s, then takes it over
  const diedAt = Date.now() - STALE_MS + 2000
  writeFileSync(join(folder, 'order.lock'), JSON.stringify({ owner: 'gone', pid: 1, host: 'elsewhere', at: diedAt }))

  const started = Date.now()
  const proxy = await startListeners(t, upstream.url, { ACME_DOMAINS: DOMAIN, ACME_DNS_HOOK: hook, ACME_DIRECTORY: pebble.directory, ACME_CA_FILE: pebble.caFile, ACME_STORAGE: storage })
  await waitIssued(t, proxy, pebble)
  t.ok(Date.now() - started >= 1500, `it waited for the lock to go stale (${Date.now() - started} ms)`)
  t.equal(pebble.orders(), 1, 'then ordered')
})

t.test('a challenge another proxy on the storage is answering is answered here too (a load balancer sends the CA anywhere)', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const dir = temporaryDirectory(t, 'immich-proxy-shared-')
  const storage = join(dir, 'acme')
  // never asked: the other proxy (this test) holds the lock for the whole test
  const directory = 'https://127.0.0.1:1/directory'
  const folder = caFolder({ storage, directory })
  mkdirSync(folder, { recursive: true })
  const hold = (): void => writeFileSync(join(folder, 'order.lock'), JSON.stringify({ owner: 'another proxy', pid: 1, host: 'elsewhere', at: Date.now() }))
  hold()
  const holding = setInterval(hold, 1000)
  t.teardown(() => clearInterval(holding))
  const settings = { ACME_DOMAINS: DOMAIN, ACME_DIRECTORY: directory, ACME_STORAGE: storage }
  const httpPort = await closedPort()
  const http01 = await startListeners(t, upstream.url, { ...settings, HTTP_PORT: String(httpPort), ACME_CHALLENGE: 'http-01' })
  const tlsAlpn01 = await startListeners(t, upstream.url, { ...settings, ACME_CHALLENGE: 'tls-alpn-01' })

  // what the proxy holding the lock does as the CA presents its challenges
  const other = new AcmeChallenges(join(folder, 'challenges'))
  const token = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0'
  other.setHttp01(token, `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`)
  const alpnCertificate = await makeCertificate(DOMAIN)
  other.setTlsAlpn01(DOMAIN, { cert: Buffer.from(alpnCertificate.cert), key: Buffer.from(alpnCertificate.key) })

  const answer = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/${token}`)
  t.equal(answer.statusCode, 200, 'http-01: the token is answered on this proxy\'s HTTP_PORT')
  t.equal(await answer.body.text(), `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`, 'with the key authorization')
  const unknown = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/not-a-token-in-progress`)
  await unknown.body.dump()
  t.equal(unknown.statusCode, 404, 'a token no proxy is answering: 404')
  const traversal = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/..%2F..%2Forder.lock`)
  await traversal.body.dump()
  t.equal(traversal.statusCode, 404, 'a name that is not a token reads no file')

  const validator = await handshake(tlsAlpn01.port, { servername: DOMAIN, ALPNProtocols: ['acme-tls/1'] })
  t.equal(validator.alpnProtocol, 'acme-tls/1', 'tls-alpn-01: acme-tls/1 is accepted on this proxy\'s HTTPS listener')
  t.equal(validator.fingerprint256, alpnCertificate.fingerprint256, 'with the challenge certificate the other proxy made')

  other.clearHttp01(token)
  other.clearTlsAlpn01(DOMAIN)
  const gone = await request(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/${token}`)
  await gone.body.dump()
  t.equal(gone.statusCode, 404, 'cleared: no longer answered')
  await t.rejects(handshake(tlsAlpn01.port, { servername: DOMAIN, ALPNProtocols: ['acme-tls/1'] }), 'nor acme-tls/1')
  t.ok(http01.running.main.server.listening, 'the proxies serve meanwhile')
})
