import t, { type Test } from 'tap'
import { once } from 'node:events'
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startProxy, type Proxy } from './helper.js'
import { startWsUpstream } from './helpers/websocket.js'
import { h2Request, h2Session, handshake, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { waitFor, within } from './helpers/wait.js'

// OpenSSL 3.0 (Node 20) names the alert SSLV3_…, OpenSSL 3.5 (Node 26) SSL/TLS_…
const HANDSHAKE_FAILURE = /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/

// certbot renews every 60 days or so; the proxy must serve the new certificate without a restart
// (it checks the files every 2 s) and without dropping the connections already open.
const RELOAD_WITHIN_MS = 15_000

/** A wss:// connection through the proxy, opened now; closed when the test ends. */
async function openWss (t: Test, proxy: Proxy, ca: string[]): Promise<WebSocket> {
  const ws = new WebSocket(`wss://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, { ca })
  t.teardown(() => ws.terminate())
  await within(once(ws, 'open'), 5000, 'the wss handshake')
  return ws
}

async function echoes (ws: WebSocket, message: string): Promise<string> {
  ws.send(message)
  const [data] = await within(once(ws, 'message'), 5000, `the echo of ${message}`) as [Buffer]
  return data.toString()
}

t.test('a certificate rewritten in place is served to new connections; open ones stay up', async t => {
  const [a, b] = await Promise.all([makeCertificate('a.immich.test'), makeCertificate('b.immich.test')])
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, a)
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url, { LOG_LEVEL: 'info', TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  t.equal((await handshake(proxy.port)).fingerprint256, a.fingerprint256, 'A at start')
  const ws = await openWss(t, proxy, [a.cert, b.cert])
  const session = await h2Session(t, proxy.url, a.cert)

  writeCertificateFiles(dir, b)
  const written = Date.now()
  await waitFor(async () => (await handshake(proxy.port)).fingerprint256 === b.fingerprint256, RELOAD_WITHIN_MS, 'B to be served', { intervalMs: 200 })
  const tookMs = Date.now() - written
  t.pass(`B served to a new connection ${tookMs} ms after the write`)
  t.equal(proxy.log.find(30, /^certificate reloaded/).length, 1, 'the reload is logged once')

  // setSecureContext() replaces the whole context: the TLS policy must come back with the pair
  const after = await handshake(proxy.port, { ALPNProtocols: ['h2', 'http/1.1'] })
  t.same([after.fingerprint256, after.protocol, after.alpnProtocol], [b.fingerprint256, 'TLSv1.3', 'h2'], 'B, TLS 1.3, h2')
  await t.rejects(handshake(proxy.port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'TLS 1.1 still refused')
  await t.rejects(handshake(proxy.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }), { code: HANDSHAKE_FAILURE }, 'CBC suites still refused')

  t.equal(await echoes(ws, 'still here'), 'still here', 'the WebSocket opened under A still echoes')
  t.equal(ws.readyState, WebSocket.OPEN)
  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping' })).status, 404, 'the HTTP/2 session opened under A still serves requests (the ws upstream answers 404)')
  t.equal(upstream.upgrades.length, 1, 'no reconnect happened')
})

t.test('a certbot symlink swap in live/ is served the same way', async t => {
  const [a, b] = await Promise.all([makeCertificate('a.immich.test'), makeCertificate('b.immich.test')])
  // /etc/letsencrypt layout: live/<name>/*.pem are symlinks into archive/<name>/*N.pem
  const root = t.testdir()
  const archive = join(root, 'archive', 'immich')
  const live = join(root, 'live', 'immich')
  mkdirSync(archive, { recursive: true })
  mkdirSync(live, { recursive: true })
  function install (n: number, pair: { cert: string, key: string }): void {
    writeFileSync(join(archive, `fullchain${n}.pem`), pair.cert)
    writeFileSync(join(archive, `privkey${n}.pem`), pair.key)
    for (const [name, target] of [['fullchain.pem', `fullchain${n}.pem`], ['privkey.pem', `privkey${n}.pem`]]) {
      // a new link renamed over the old one, as certbot does: the path never dangles
      const link = join(live, `${name}.new`)
      symlinkSync(join('..', '..', 'archive', 'immich', target), link)
      renameSync(link, join(live, name))
    }
  }
  install(1, a)
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url, { LOG_LEVEL: 'info', TLS_CERT_FILE: join(live, 'fullchain.pem'), TLS_KEY_FILE: join(live, 'privkey.pem') })
  t.equal((await handshake(proxy.port)).fingerprint256, a.fingerprint256, 'A at start')
  const ws = await openWss(t, proxy, [a.cert, b.cert])

  install(2, b)
  const written = Date.now()
  await waitFor(async () => (await handshake(proxy.port)).fingerprint256 === b.fingerprint256, RELOAD_WITHIN_MS, 'B to be served', { intervalMs: 200 })
  const tookMs = Date.now() - written
  t.pass(`B served to a new connection ${tookMs} ms after the swap`)
  t.equal(await echoes(ws, 'after the swap'), 'after the swap', 'the WebSocket opened under A still echoes')
  t.equal(upstream.upgrades.length, 1)
})
