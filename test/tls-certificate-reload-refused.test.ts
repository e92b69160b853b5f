import t from 'tap'
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { handshake, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'

// A renewal caught half-way (a cert file still being written, a key from another pair) must not
// replace a certificate that works: browsers would get a broken handshake until the next write.
const WITHIN_MS = 15_000

t.test('a half-written or mismatched pair is refused: the old certificate stays, an error is logged', async t => {
  const [a, b, c] = await Promise.all([makeCertificate('a.immich.test'), makeCertificate('b.immich.test'), makeCertificate('c.immich.test')])
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, a)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { LOG_LEVEL: 'info', TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const errors = (): Array<Record<string, unknown>> => proxy.log.find(50, /^new certificate refused/)

  // half of B's certificate, B's key
  writeFileSync(files.keyFile, b.key)
  writeFileSync(files.certFile, b.cert.slice(0, Math.floor(b.cert.length / 2)))
  await waitFor(() => errors().length >= 1, WITHIN_MS, 'an error about the half-written file')
  t.match(errors()[0], { err: { message: `TLS_CERT_FILE: "${files.certFile}" is not a PEM certificate` } })
  t.equal((await handshake(proxy.port)).fingerprint256, a.fingerprint256, 'A is still served')

  // B's certificate complete, with C's key
  await sleep(50)
  writeFileSync(files.keyFile, c.key)
  writeFileSync(files.certFile, b.cert)
  await waitFor(() => errors().some(line => /does not match/.test(JSON.stringify(line))), WITHIN_MS, 'an error about the mismatched key')
  t.match(errors().at(-1), { err: { message: `TLS_KEY_FILE: "${files.keyFile}" does not match the certificate in "${files.certFile}"` } })
  t.equal((await handshake(proxy.port)).fingerprint256, a.fingerprint256, 'A is still served')
  t.equal(proxy.log.find(30, /^certificate reloaded/).length, 0, 'nothing was reloaded')

  const client = new Client(proxy.url, { connect: { ca: a.cert, servername: 'localhost' } })
  t.teardown(() => client.close())
  const res = await client.request({ method: 'GET', path: '/api/server/ping' })
  t.equal(await res.body.text(), 'ok', 'a client that trusts A is served as before')

  // the renewal completes: B's key arrives
  writeFileSync(files.keyFile, b.key)
  // a fresh connection every 200 ms, each a full handshake
  await waitFor(async () => (await handshake(proxy.port)).fingerprint256 === b.fingerprint256, WITHIN_MS, 'B to be served', { intervalMs: 200 })
  t.equal(proxy.log.find(30, /^certificate reloaded/).length, 1, 'the complete pair is taken')
})
