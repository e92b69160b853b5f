// Renewal while running: once a third of the served certificate's lifetime is left, the proxy
// orders a new one and serves it to new connections, without a restart. The storage is seeded
// with a certificate for the name that falls due a few seconds after start (pebble's own are
// valid for five years).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { generate } from 'selfsigned'
import { startUpstream } from './helper.js'
import { getJson, startListeners } from './helpers/ops.js'
import { getTrusted, withPebble, type Pebble } from './helpers/pebble.js'
import { handshake } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'

const DOMAIN = 'photos.example.test'
const DAY = 24 * 3600 * 1000

t.test('a certificate with a third of its lifetime left is renewed and served without a restart', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : JSON.stringify({ immich: req.url }))
  })
  const storage = mkdtempSync(join(tmpdir(), 'immich-proxy-acme-'))
  t.teardown(() => rmSync(storage, { recursive: true, force: true }))
  let seeded = ''
  const { pebble, port, started } = await withPebble(t, async (pebble: Pebble, ports) => {
    // 15 days and 7.5 s long, 5 days and 7.5 s left: a third of it is left 5 s from now
    const now = Date.now()
    const stored = await generate([{ name: 'commonName', value: DOMAIN }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 10 * DAY),
      notAfterDate: new Date(now + 5 * DAY + 7_500),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: DOMAIN }] }]
    })
    seeded = new X509Certificate(stored.cert).fingerprint256
    const url = new URL(pebble.directory)
    const directory = join(storage, `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '_'))
    mkdirSync(directory, { recursive: true, mode: 0o700 })
    writeFileSync(join(directory, 'fullchain.pem'), stored.cert, { mode: 0o600 })
    writeFileSync(join(directory, 'privkey.pem'), stored.private, { mode: 0o600 })
    return await startListeners(t, upstream.url, {
      PORT: String(ports.port),
      ACME_DOMAINS: DOMAIN,
      ACME_DIRECTORY: pebble.directory,
      ACME_CA_FILE: pebble.caFile,
      ACME_STORAGE: storage
    })
  })
  t.match(await getJson(`${started.adminUrl}/readyz`), { status: 200, body: { certificate: 'issued' } }, 'the stored certificate is served at start')
  t.equal((await handshake(port, { servername: DOMAIN })).fingerprint256, seeded, 'the seeded one')
  t.equal(pebble.orders(), 0, 'no order while it has more than a third of its life left')

  let served = seeded
  await waitFor(async () => (served = (await handshake(port, { servername: DOMAIN })).fingerprint256) !== seeded, 30_000,
    'a renewed certificate on new connections', { intervalMs: 200, last: () => `${served}\n${pebble.output()}` })
  t.equal(pebble.orders(), 1, 'one order, once it fell due')
  const answer = await getTrusted(port, DOMAIN, await pebble.root(), '/api/assets')
  t.equal(answer.status, 200, "the renewed certificate is the CA's, trusted by its root")
  t.equal(answer.certificate.fingerprint256, served)
  t.match(await getJson(`${started.adminUrl}/readyz`), { status: 200 }, 'ready throughout')
})
