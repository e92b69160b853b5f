// ACME_CHALLENGE=dns-01 through ACME_DNS_HOOK against pebble, whose DNS server is
// pebble-challtestsrv: the hook sets and clears TXT records through challtestsrv's management API,
// as a real hook would through a DNS provider's. A wildcard name works this way only. Also an
// external account binding (ACME_EAB_KID / ACME_EAB_HMAC_KEY) with a CA that requires one.
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { startListeners, temporaryDirectory } from './helpers/ops.js'
import { getTrusted, startPebble, waitIssued, writeDnsHook } from './helpers/pebble.js'
import { waitFor } from './helpers/wait.js'

const DOMAIN = 'photos.example.test'

t.test('dns-01: a certificate for a name and its wildcard, the TXT records set and cleared by the hook', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  // pebble validates nothing over HTTP or TLS here: no port of the proxy is reachable to it
  const pebble = await startPebble(t)
  const dir = temporaryDirectory(t, 'immich-proxy-dns-')
  const { hook, calls } = writeDnsHook(dir, pebble.dnsManagement)
  const proxy = await startListeners(t, upstream.url, {
    ACME_DOMAINS: `${DOMAIN},*.${DOMAIN}`,
    ACME_DNS_HOOK: hook,
    ACME_DIRECTORY: pebble.directory,
    ACME_CA_FILE: pebble.caFile,
    ACME_STORAGE: join(dir, 'acme')
  })
  await waitIssued(t, proxy, pebble)

  const root = await pebble.root()
  const answer = await getTrusted(proxy.port, DOMAIN, root)
  t.equal(answer.body, 'immich', 'Immich answers over the trusted certificate')
  t.match(answer.certificate.subjectaltname, `DNS:*.${DOMAIN}`, 'the certificate holds the wildcard')
  t.equal((await getTrusted(proxy.port, `www.${DOMAIN}`, root)).body, 'immich', 'and serves a name under it')

  const made = calls()
  const sets = made.filter(call => call.action === 'set')
  t.equal(sets.length, 2, 'one record set per authorization (the name and its wildcard)')
  t.ok(made.every(call => call.domain === DOMAIN && call.record === `_acme-challenge.${DOMAIN}`), 'at _acme-challenge.<name>, for both')
  t.ok(sets.every(call => /^[A-Za-z0-9_-]{43}$/.test(call.value)), 'each value a base64url SHA-256 digest')
  await waitFor(() => calls().filter(call => call.action === 'clear').length === 2, 5000, 'both records to be cleared')
  t.same(calls().filter(call => call.action === 'clear').map(call => call.value).sort(), sets.map(call => call.value).sort(), 'each value cleared after validation')
})

t.test('dns-01: a hook that fails is named in the log with what it said, and the temporary certificate stays', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const pebble = await startPebble(t)
  const dir = temporaryDirectory(t, 'immich-proxy-dns-')
  const hook = join(dir, 'broken-hook.sh')
  writeFileSync(hook, '#!/bin/sh\necho "provider says: invalid API token" >&2\nexit 3\n')
  chmodSync(hook, 0o755)
  const proxy = await startProxy(t, upstream.url, {
    ACME_DOMAINS: DOMAIN,
    ACME_DNS_HOOK: hook,
    ACME_DIRECTORY: pebble.directory,
    ACME_CA_FILE: pebble.caFile,
    ACME_STORAGE: join(dir, 'acme'),
    LOG_LEVEL: 'warn'
  })
  await waitFor(() => proxy.log.find(50, /^ACME: no certificate obtained/).length > 0, 20_000, 'the failure in the log', { last: () => proxy.log.text })
  const [failure] = proxy.log.find(50, /^ACME: no certificate obtained/) as Array<{ msg: string, cause: string, err: { message: string }, retryInSeconds: number }>
  t.equal(failure.cause, 'dns-hook', 'the hook is named as the cause')
  t.match(failure.err.message, `ACME_DNS_HOOK ${hook} set ${DOMAIN} _acme-challenge.${DOMAIN} exited with 3: provider says: invalid API token`, 'with its exit and what it said')
  t.match(failure.msg, /run it by hand/, 'and what to do')
  t.equal(failure.retryInSeconds, 60, 'retried in a minute')
  await t.rejects(getTrusted(proxy.port, DOMAIN, await pebble.root()), 'the temporary certificate is still served')
})

t.test('external account binding: refused without it (named), issued with it', async t => {
  const KID = 'kid-1'
  const HMAC = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W'
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const pebble = await startPebble(t, { eab: { [KID]: HMAC } })
  const dir = temporaryDirectory(t, 'immich-proxy-eab-')
  const { hook } = writeDnsHook(dir, pebble.dnsManagement)
  const settings = { ACME_DOMAINS: DOMAIN, ACME_DNS_HOOK: hook, ACME_DIRECTORY: pebble.directory, ACME_CA_FILE: pebble.caFile, ACME_STORAGE: join(dir, 'acme') }

  const without = await startProxy(t, upstream.url, { ...settings, LOG_LEVEL: 'warn' })
  await waitFor(() => without.log.find(50, /^ACME: no certificate obtained/).length > 0, 20_000, 'the refusal in the log', { last: () => without.log.text })
  const [refusal] = without.log.find(50, /^ACME: no certificate obtained/) as Array<{ cause: string, problemType: string }>
  t.same([refusal.cause, refusal.problemType], ['account', 'externalAccountRequired'], 'without a binding: the account is refused, and said so')
  await without.app.close()

  const withBinding = await startListeners(t, upstream.url, { ...settings, ACME_EAB_KID: KID, ACME_EAB_HMAC_KEY: HMAC, LOG_LEVEL: 'info' })
  await waitIssued(t, withBinding, pebble)
  t.equal((await getTrusted(withBinding.port, DOMAIN, await pebble.root())).body, 'immich', 'with it: the certificate is issued and served')
})
