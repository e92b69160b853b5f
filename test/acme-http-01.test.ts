// ACME_DOMAINS with http-01 against a real ACME server (pebble): the proxy starts serving HTTPS
// at once, obtains a certificate pebble validates on the HTTP_PORT listener, serves it, stores it
// 0600, and a restart on the same storage serves it again without ordering.
import t from 'tap'
import { startUpstream } from './helper.js'
import { getJson, metricsOf, sample, startListeners, temporaryDirectory } from './helpers/ops.js'
import { fileModes, getTrusted, restartOnSamePorts, withPebble, type Pebble } from './helpers/pebble.js'
import { waitFor } from './helpers/wait.js'

const DOMAIN = 'photos.example.test'

t.test('http-01: a certificate from the CA, answered on HTTP_PORT, kept across a restart', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    // /readyz asks Immich too
    res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : JSON.stringify({ immich: req.url }))
  })
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  const settings = (pebble: Pebble, ports: { port: number, httpPort: number }): Record<string, string> => ({
    PORT: String(ports.port),
    HTTP_PORT: String(ports.httpPort),
    ACME_DOMAINS: DOMAIN,
    ACME_EMAIL: 'admin@example.test',
    ACME_DIRECTORY: pebble.directory,
    ACME_CA_FILE: pebble.caFile,
    ACME_STORAGE: storage
  })
  const { pebble, port, httpPort, started: first } = await withPebble(t, async (pebble, ports) => await startListeners(t, upstream.url, settings(pebble, ports)))
  const waiting = await getJson(`${first.adminUrl}/readyz`)
  t.match(waiting, { status: 503, body: { status: 'not ready', certificate: 'temporary' } }, 'not ready while the temporary certificate is served')
  const root = await pebble.root()
  await t.rejects(getTrusted(port, DOMAIN, root), /self[- ]signed|unable to verify|unable to get/, 'the temporary certificate is not one the CA issued')

  let readiness = waiting
  await waitFor(async () => (readiness = await getJson(`${first.adminUrl}/readyz`)).status === 200, 20_000, 'readiness once the certificate is issued',
    { intervalMs: 100, last: () => `${JSON.stringify(readiness)}\n${pebble.output()}` })
  t.match((await getJson(`${first.adminUrl}/readyz`)).body, { certificate: 'issued' })
  const answer = await getTrusted(port, DOMAIN, root, '/api/assets')
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), { immich: '/api/assets' }, 'Immich answers through the proxy over the trusted certificate')
  t.match(answer.certificate.subjectaltname, `DNS:${DOMAIN}`, 'the certificate names the domain')
  t.equal(pebble.orders(), 1, 'one order')
  const metrics = await metricsOf(first.adminUrl)
  t.equal(sample(metrics, 'immich_proxy_certificate_expiry_timestamp_seconds', `domain="${DOMAIN}"`),
    Math.floor(new Date(answer.certificate.valid_to).getTime() / 1000), '/metrics: the served certificate\'s expiry, by domain')
  t.equal(sample(metrics, 'immich_proxy_acme_orders_total', 'result="issued"'), 1, '/metrics: one order issued')

  // the HTTP_PORT listener: the mobile app's probe still reaches Immich, and only tokens of an
  // order in progress are answered
  const wellKnown = await fetch(`http://127.0.0.1:${httpPort}/.well-known/immich`, { headers: { host: DOMAIN } })
  t.equal(wellKnown.status, 200)
  t.same(await wellKnown.json(), { immich: '/.well-known/immich' }, '/.well-known/immich goes to Immich')
  const unknown = await fetch(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/not-a-token-of-ours`, { headers: { host: DOMAIN } })
  t.equal(unknown.status, 404, 'an unknown token is 404')
  await unknown.body?.cancel()

  const files = fileModes(storage)
  t.ok(files.some(({ file }) => file.endsWith('fullchain.pem')) && files.some(({ file }) => file.endsWith('privkey.pem')) &&
    files.some(({ file }) => file === 'account.key'), `storage holds the account key, certificate and key: ${files.map(({ file }) => file).join(', ')}`)
  t.same(files.filter(({ mode }) => mode !== 0o600), [], 'every stored file is 0600')

  await first.running.close()
  const second = await restartOnSamePorts(async () => await startListeners(t, upstream.url, settings(pebble, { port, httpPort })))
  t.match(await getJson(`${second.adminUrl}/readyz`), { status: 200, body: { certificate: 'issued' } }, 'ready at once after a restart')
  const again = await getTrusted(port, DOMAIN, root, '/api/assets')
  t.equal(again.certificate.fingerprint256, answer.certificate.fingerprint256, 'the stored certificate is served')
  t.equal(pebble.orders(), 1, 'no new order')
})
