// Several proxies on one ACME_STORAGE (a shared volume) order once: a lock file with a lease
// (plugins/tls/storage-lock.ts) lets one order while the others wait, then serve what it stored.
// A lock left by a process that died is taken over once stale.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { caFolder } from '../plugins/tls/acme.js'
import { STALE_MS } from '../plugins/tls/storage-lock.js'
import { startUpstream } from './helper.js'
import { startListeners } from './helpers/ops.js'
import { fileModes, getTrusted, startPebble, waitIssued, writeDnsHook } from './helpers/pebble.js'

const DOMAIN = 'photos.example.test'

t.test('three proxies started together on one storage: one order, the same certificate served by all', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const pebble = await startPebble(t)
  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-shared-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
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
  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-shared-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
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
