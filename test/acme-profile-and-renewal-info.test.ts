// ACME_PROFILE is asked for only when the CA lists it, and a warning says so otherwise; and ARI
// (RFC 9773): the CA's renewal window decides when to renew. pebble 2.4 has neither, so a
// stand-in directory (test/helpers/pebble.ts) adds them in front of a real pebble.
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { caFolder } from '../plugins/tls/acme.js'
import { startProxy, startUpstream } from './helper.js'
import { getTrusted, startDirectoryStandIn, startPebble, writeDnsHook, type Pebble } from './helpers/pebble.js'
import { waitFor } from './helpers/wait.js'
import { temporaryDirectory } from './helpers/ops.js'

const DOMAIN = 'photos.example.test'

async function setting (t: Test): Promise<{ pebble: Pebble, env: Record<string, string>, upstreamUrl: string }> {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : 'immich'))
  const pebble = await startPebble(t)
  const dir = temporaryDirectory(t, 'immich-proxy-acme-')
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

t.test('ARI: the CA\'s renewal window decides; a window that has passed renews at once, replacing the old certificate', async t => {
  const { pebble, env, upstreamUrl } = await setting(t)
  const day = 24 * 3_600_000
  let window = { start: new Date(Date.now() + day).toISOString(), end: new Date(Date.now() + 2 * day).toISOString() }
  let explanationURL = ''
  const standIn = await startDirectoryStandIn(t, pebble, {
    // asked again after a second (Retry-After), so the test can move the window
    renewalInfo: () => ({ status: 200, body: { suggestedWindow: window, explanationURL: explanationURL === '' ? undefined : explanationURL }, retryAfter: '1' })
  })
  const proxy = await startProxy(t, upstreamUrl, { ...env, ACME_DIRECTORY: standIn.directory, ACME_CA_FILE: standIn.caFile })
  await waitFor(() => proxy.log.find(30, /^ACME: renewal scheduled in the CA's window/).length > 0, 30_000, 'the first certificate, then its window', { last: () => proxy.log.text })
  const root = await pebble.root()
  const first = (await getTrusted(proxy.port, DOMAIN, root)).certificate
  // the identifier, worked out apart from the proxy: the issuer's Subject Key Identifier (what the
  // leaf's Authority Key Identifier names) and the leaf's serial as Node reads it
  const chain = readFileSync(join(caFolder({ storage: env.ACME_STORAGE, directory: standIn.directory }), 'fullchain.pem'), 'utf8')
  const [leafPem = '', issuerPem = ''] = chain.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
  const x509 = await import('@peculiar/x509')
  const issuerKeyId = new x509.X509Certificate(issuerPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? ''
  const firstId = `${Buffer.from(issuerKeyId, 'hex').toString('base64url')}.${serialBase64url(new X509Certificate(leafPem).serialNumber)}`
  t.equal(new X509Certificate(leafPem).fingerprint256, first.fingerprint256, 'the stored certificate is the one served')
  t.equal(standIn.renewalInfoAsked[0], firstId, 'renewalInfo is asked about it by RFC 9773\'s identifier (AKI and serial, base64url)')
  const [scheduled] = proxy.log.find(30, /^ACME: renewal scheduled in the CA's window/) as Array<{ renewAt: string }>
  t.ok(Date.parse(scheduled.renewAt) >= Date.parse(window.start) && Date.parse(scheduled.renewAt) <= Date.parse(window.end), 'at a time inside the window')
  await waitFor(() => standIn.renewalInfoAsked.length >= 2, 5000, 'asked again after the CA\'s Retry-After')
  t.equal(pebble.orders(), 1, 'no renewal before the window')

  // the CA moves the window into the past (a revocation, say)
  explanationURL = 'https://ca.example.test/incident'
  window = { start: new Date(Date.now() - 2 * day).toISOString(), end: new Date(Date.now() - day).toISOString() }
  await waitFor(() => proxy.log.find(30, /^ACME: certificate issued/).length === 2, 30_000, 'the renewal', { last: () => proxy.log.text })
  const [urgent] = proxy.log.find(40, /^ACME: the CA asks for this certificate to be renewed now/) as Array<{ explanationURL: string }>
  t.equal(urgent.explanationURL, explanationURL, 'the CA\'s explanation is logged')
  const renewalOrder = (proxy.log.find(30, /^ACME: ordering a certificate/) as Array<{ replaces?: string }>)[1]
  t.equal(renewalOrder.replaces, firstId, 'the renewal order says which certificate it replaces')
  t.equal(pebble.orders(), 2, 'one renewal')
  await waitFor(async () => (await getTrusted(proxy.port, DOMAIN, root)).certificate.fingerprint256 !== first.fingerprint256, 5000, 'the new certificate to be served')
  t.pass('the renewed certificate is served')
})

/** A serial number as Node reports it (hex, no leading zero byte) in RFC 9773's DER form, base64url. */
function serialBase64url (serial: string): string {
  const hex = serial.length % 2 === 1 ? `0${serial}` : serial
  // DER: a leading 0x00 when the high bit is set, so the integer stays positive
  return Buffer.from(parseInt(hex.slice(0, 2), 16) >= 0x80 ? `00${hex}` : hex, 'hex').toString('base64url')
}
