// ACME_PROFILE is asked for only when the CA lists it, and a warning says so otherwise; and ARI
// (RFC 9773): the CA's renewal window decides when to renew. pebble 2.4 has neither, so a
// stand-in directory (test/helpers/pebble.ts) adds them in front of a real pebble.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { getTrusted, startDirectoryStandIn, startPebble, writeDnsHook, type Pebble } from './helpers/pebble.js'
import { waitFor } from './helpers/wait.js'

const DOMAIN = 'photos.example.test'

async function setting (t: Test): Promise<{ pebble: Pebble, env: Record<string, string>, upstreamUrl: string }> {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const pebble = await startPebble(t)
  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-acme-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { hook } = writeDnsHook(dir, pebble.dnsManagement)
  return { pebble, upstreamUrl: upstream.url, env: { ACME_DOMAINS: DOMAIN, ACME_DNS_HOOK: hook, ACME_STORAGE: join(dir, 'acme'), LOG_LEVEL: 'info' } }
}

t.test('ACME_PROFILE the CA does not list: a warning at start naming what it offers, and the CA\'s default certificate', async t => {
  const { pebble, env, upstreamUrl } = await setting(t)
  const proxy = await startProxy(t, upstreamUrl, { ...env, ACME_DIRECTORY: pebble.directory, ACME_CA_FILE: pebble.caFile, ACME_PROFILE: 'shortlived' })
  await waitFor(() => proxy.log.find(30, /^ACME: certificate issued/).length > 0, 30_000, 'the certificate', { last: () => proxy.log.text })
  const [warning] = proxy.log.find(40, /^ACME: ACME_PROFILE=shortlived is not a profile this CA offers \(it offers none\)/) as Array<{ offered: string[] }>
  t.same(warning?.offered, [], 'warned, with the profiles offered')
  const [ordering] = proxy.log.find(30, /^ACME: ordering a certificate/) as Array<{ profile?: string }>
  t.equal(ordering.profile, undefined, 'the order asks for no profile')
  t.equal((await getTrusted(proxy.port, DOMAIN, await pebble.root())).body, 'immich', 'and the certificate is served')
})

t.test('ACME_PROFILE the CA lists: asked for in the order, no warning', async t => {
  const { pebble, env, upstreamUrl } = await setting(t)
  const standIn = await startDirectoryStandIn(t, pebble, { profiles: { classic: 'the usual', shortlived: '6 days' } })
  const proxy = await startProxy(t, upstreamUrl, { ...env, ACME_DIRECTORY: standIn.directory, ACME_CA_FILE: standIn.caFile, ACME_PROFILE: 'shortlived' })
  await waitFor(() => proxy.log.find(30, /^ACME: certificate issued/).length > 0, 30_000, 'the certificate', { last: () => proxy.log.text })
  const [ordering] = proxy.log.find(30, /^ACME: ordering a certificate/) as Array<{ profile?: string }>
  t.equal(ordering.profile, 'shortlived', 'the order asks for the profile')
  t.equal(proxy.log.find(40, /ACME_PROFILE/).length, 0, 'no warning')
})
