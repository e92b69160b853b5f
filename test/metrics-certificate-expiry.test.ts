// /metrics shows when the served certificate expires, by each name it is for, and follows a
// renewed file; a plain-HTTP proxy has no such series. (ACME's certificates: test/acme-http-01.)
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { startUpstream } from './helper.js'
import { metricsOf, sample, startListeners } from './helpers/ops.js'
import { makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'

const NAME = 'immich_proxy_certificate_expiry_timestamp_seconds'
const expiry = (pem: string): number => Math.floor(new Date(new X509Certificate(pem).validTo).getTime() / 1000)

t.test('TLS_CERT_FILE: the expiry of the certificate served, by domain, and of the next one once reloaded', async t => {
  const [soon, later] = await Promise.all([makeCertificate('a.immich.test', 'ec', 10), makeCertificate('b.immich.test', 'ec', 90)])
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, soon)
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const proxy = await startListeners(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })

  const before = await metricsOf(proxy.adminUrl)
  for (const domain of ['localhost', 'immich.test']) {
    t.equal(sample(before, NAME, `domain="${domain}"`), expiry(soon.cert), `${domain}: the served certificate's notAfter`)
  }
  t.equal(sample(before, NAME, 'domain="127.0.0.1"'), undefined, 'an IP address is not a domain')

  writeCertificateFiles(dir, later)
  let now = before
  await waitFor(async () => {
    now = await metricsOf(proxy.adminUrl)
    return sample(now, NAME, 'domain="immich.test"') === expiry(later.cert)
  }, 10_000,
  'the renewed certificate\'s expiry', { intervalMs: 200, last: () => now.split('\n').filter(line => line.startsWith(NAME)).join('\n') })
  t.pass('the renewed file\'s expiry is shown once it is served')
})

t.test('plain HTTP: no certificate, no series', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const proxy = await startListeners(t, upstream.url)
  const metrics = await metricsOf(proxy.adminUrl)
  t.match(metrics, `# TYPE ${NAME} gauge`, 'the family is declared')
  t.notMatch(metrics, `${NAME}{`, 'with no sample')
})
