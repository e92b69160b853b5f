// ACME_DOMAINS with tls-alpn-01 against a real ACME server (pebble): no HTTP_PORT; pebble
// validates on the HTTPS listener itself (ALPN acme-tls/1, RFC 8737) while browsers there keep
// getting h2 or http/1.1, and a restart on the same storage serves the stored certificate.
import t from 'tap'
import { startUpstream } from './helper.js'
import { getJson, startListeners, temporaryDirectory } from './helpers/ops.js'
import { fileModes, getTrusted, restartOnSamePorts, withPebble, type Pebble } from './helpers/pebble.js'
import { handshake } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'

const DOMAIN = 'photos.example.test'

t.test('tls-alpn-01: a certificate from the CA, answered on the HTTPS listener, kept across a restart', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    // /readyz asks Immich too
    res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : JSON.stringify({ immich: req.url }))
  })
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  // no HTTP_PORT: pebble's http-01 port is a free one where nothing listens, so only
  // tls-alpn-01 can succeed (pebble 2.4 logs its HTTP attempts, not its TLS-ALPN ones)
  const settings = (pebble: Pebble, ports: { port: number }): Record<string, string> => ({
    PORT: String(ports.port),
    ACME_DOMAINS: DOMAIN,
    ACME_DIRECTORY: pebble.directory,
    ACME_CA_FILE: pebble.caFile,
    ACME_STORAGE: storage
  })
  const { pebble, port, started: first } = await withPebble(t, async (pebble, ports) => await startListeners(t, upstream.url, settings(pebble, ports)))
  let readiness = await getJson(`${first.adminUrl}/readyz`)
  t.match(readiness, { status: 503, body: { status: 'not ready', certificate: 'temporary' } }, 'not ready while the temporary certificate is served')
  const root = await pebble.root()
  await waitFor(async () => (readiness = await getJson(`${first.adminUrl}/readyz`)).status === 200, 20_000, 'readiness once the certificate is issued',
    { intervalMs: 100, last: () => `${JSON.stringify(readiness)}\n${pebble.output()}` })
  const answer = await getTrusted(port, DOMAIN, root, '/api/assets')
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), { immich: '/api/assets' }, 'Immich answers through the proxy over the trusted certificate')
  t.match(answer.certificate.subjectaltname, `DNS:${DOMAIN}`, 'the certificate names the domain')
  t.equal(pebble.orders(), 1, 'one order')

  // the ALPN callback keeps the listener's own protocols, and answers acme-tls/1 only for a
  // challenge in progress
  t.equal((await handshake(port, { servername: DOMAIN, ALPNProtocols: ['h2', 'http/1.1'] })).alpnProtocol, 'h2', 'a browser still gets h2')
  t.equal((await handshake(port, { servername: DOMAIN, ALPNProtocols: ['http/1.1'] })).alpnProtocol, 'http/1.1')
  await t.rejects(handshake(port, { servername: DOMAIN, ALPNProtocols: ['acme-tls/1'] }), { code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' },
    'acme-tls/1 with no challenge in progress is refused')

  t.same(fileModes(storage).filter(({ mode }) => mode !== 0o600), [], 'every stored file is 0600')
  t.same(fileModes(storage).map(({ file }) => file.replace(/^.*\//, '')).sort(), ['account.key', 'fullchain.pem', 'orders.json', 'privkey.pem'],
    'account key, certificate and key, and the record of orders')

  await first.running.close()
  const second = await restartOnSamePorts(async () => await startListeners(t, upstream.url, settings(pebble, { port })))
  t.match(await getJson(`${second.adminUrl}/readyz`), { status: 200, body: { certificate: 'issued' } }, 'ready at once after a restart')
  const again = await getTrusted(port, DOMAIN, root, '/api/assets')
  t.equal(again.certificate.fingerprint256, answer.certificate.fingerprint256, 'the stored certificate is served')
  t.equal(pebble.orders(), 1, 'no new order')
})
