// TLS_SELF_SIGNED=true with the real entry point: HTTPS at once for a first try on a LAN, and a
// warning in the log that says this is not for keeps.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:tls'
import { Client } from 'undici'
import { startUpstream } from './helper.js'
import { spawnServer } from './helpers/ops.js'

/** The certificate the server presents, as PEM. */
async function servedCertificate (port: number): Promise<X509Certificate> {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
  try {
    await once(socket, 'secureConnect')
    return new X509Certificate(socket.getPeerCertificate().raw)
  } finally {
    socket.destroy()
  }
}

t.test('TLS_SELF_SIGNED=true serves HTTPS with a generated certificate and warns', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(String(req.headers['x-forwarded-proto'])))
  // the admin listener is not what this test is about
  const { port, lines } = await spawnServer(t, { TLS_SELF_SIGNED: 'true', UPSTREAM_URL: upstream.url, ADMIN_PORT: 'off' })

  const warnings = lines.filter(line => line.level === 40)
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0].msg, /^TLS_SELF_SIGNED: serving a generated certificate; browsers and the mobile app will warn/)

  const certificate = await servedCertificate(port)
  t.equal(certificate.issuer, certificate.subject, 'self-signed')
  t.match(certificate.subjectAltName, /DNS:localhost/)
  t.match(certificate.subjectAltName, /IP Address:127\.0\.0\.1/, 'valid for the addresses a LAN user types')
  t.ok(new Date(certificate.validTo).getTime() > Date.now() + 300 * 24 * 3600 * 1000, 'valid for about a year')

  // a client told to trust that certificate (what "accept the warning" does) is served
  const client = new Client(`https://127.0.0.1:${port}`, { connect: { ca: certificate.toString() } })
  t.teardown(() => client.close())
  const res = await client.request({ method: 'GET', path: '/api/server/ping' })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'https', 'Immich hears https')
  t.equal(res.headers['strict-transport-security'], 'max-age=31536000')
})
