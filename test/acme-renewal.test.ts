// Renewal while running: once a third of the served certificate's lifetime is left, the proxy
// orders a new one and serves it to new connections, without a restart. The storage is seeded
// with a certificate for the name that falls due a few seconds after start (pebble's own are
// valid for five years).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { generate } from 'selfsigned'
import { getJson, startListeners, temporaryDirectory } from './helpers/ops.js'
import { getTrusted, withPebble, type Pebble } from './helpers/pebble.js'
import { handshake } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'

const DOMAIN = 'photos.example.test'
const DAY = 24 * 3600 * 1000

/** An HTTPS upload of `total` bytes in `chunks` pieces `everyMs` apart, on a connection of its own (the seeded certificate is not the CA's: not verified). */
function slowUpload (port: number, total: number, chunks: number, everyMs: number): Promise<{ status?: number, body: string, error?: Error, certificate?: string }> {
  return new Promise(resolve => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername: DOMAIN, rejectUnauthorized: false, method: 'POST', path: '/api/assets', agent: false, headers: { host: DOMAIN, 'content-length': total } })
    let sent = 0
    let certificate: string | undefined
    req.on('socket', socket => socket.once('secureConnect', () => { certificate = (socket as TLSSocket).getPeerCertificate().fingerprint256 }))
    req.on('error', error => resolve({ body: '', error }))
    req.on('response', res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body, certificate }))
    })
    const next = (): void => {
      const size = Math.min(Math.ceil(total / chunks), total - sent)
      sent += size
      if (sent >= total) req.end(Buffer.alloc(size, 'u'))
      else {
        req.write(Buffer.alloc(size, 'u'))
        setTimeout(next, everyMs)
      }
    }
    next()
  })
}

t.test('a certificate with a third of its lifetime left is renewed and served without a restart; an open WebSocket and an upload in flight go on', async t => {
  // Immich: JSON answers, uploads counted, WebSockets echoed
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.method === 'POST') {
      let received = 0
      req.on('data', (chunk: Buffer) => { received += chunk.length })
      req.on('end', () => res.end(JSON.stringify({ received })))
      return
    }
    res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : JSON.stringify({ immich: req.url }))
  })
  const echo = new WebSocketServer({ server })
  echo.on('connection', socket => socket.on('message', (data, binary) => socket.send(data, { binary })))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const client of echo.clients) client.terminate()
    await new Promise(resolve => server.close(resolve))
  })
  const upstream = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  let seeded = ''
  const { pebble, port, started } = await withPebble(t, async (pebble: Pebble, ports) => {
    // 15 days and 7.5 s long, 5 days and 7.5 s left: a third of it is left 5 s from now
    const now = Date.now()
    const stored = await generate([{ name: 'commonName', value: DOMAIN }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 10 * DAY),
      notAfterDate: new Date(now + 5 * DAY + 7_500),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: DOMAIN }] }]
    })
    seeded = new X509Certificate(stored.cert).fingerprint256
    const url = new URL(pebble.directory)
    const directory = join(storage, `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '_'))
    mkdirSync(directory, { recursive: true, mode: 0o700 })
    writeFileSync(join(directory, 'fullchain.pem'), stored.cert, { mode: 0o600 })
    writeFileSync(join(directory, 'privkey.pem'), stored.private, { mode: 0o600 })
    return await startListeners(t, upstream.url, {
      PORT: String(ports.port),
      ACME_DOMAINS: DOMAIN,
      ACME_DIRECTORY: pebble.directory,
      ACME_CA_FILE: pebble.caFile,
      ACME_STORAGE: storage
    })
  })
  t.match(await getJson(`${started.adminUrl}/readyz`), { status: 200, body: { certificate: 'issued' } }, 'the stored certificate is served at start')
  t.equal((await handshake(port, { servername: DOMAIN })).fingerprint256, seeded, 'the seeded one')
  t.equal(pebble.orders(), 0, 'no order while it has more than a third of its life left')

  // opened on the seeded certificate, before the renewal (due about 5 s after start)
  // ws hands its options to tls.connect, servername included
  const tlsOptions = { servername: DOMAIN, rejectUnauthorized: false, headers: { host: DOMAIN } } as WebSocket.ClientOptions
  const ws = new WebSocket(`wss://127.0.0.1:${port}/api/socket.io/?EIO=4&transport=websocket`, tlsOptions)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  const echoed = async (text: string): Promise<string> => {
    ws.send(text)
    const [data] = await once(ws, 'message') as [Buffer]
    return data.toString()
  }
  t.equal(await echoed('before'), 'before', 'a WebSocket open before the renewal')
  const total = 4 * 1024 * 1024
  let uploadEnded = false
  const upload = slowUpload(port, total, 16, 800).finally(() => { uploadEnded = true })

  let served = seeded
  await waitFor(async () => (served = (await handshake(port, { servername: DOMAIN })).fingerprint256) !== seeded, 30_000,
    'a renewed certificate on new connections', { intervalMs: 200, last: () => `${served}\n${pebble.output()}` })
  t.notOk(uploadEnded, 'the upload was still going when the renewed certificate came into service')
  t.equal(pebble.orders(), 1, 'one order, once it fell due')
  const answer = await getTrusted(port, DOMAIN, await pebble.root(), '/api/assets')
  t.equal(answer.status, 200, "the renewed certificate is the CA's, trusted by its root")
  t.equal(answer.certificate.fingerprint256, served)
  t.match(await getJson(`${started.adminUrl}/readyz`), { status: 200 }, 'ready throughout')
  t.equal(await echoed('after'), 'after', 'the WebSocket opened before the renewal still echoes')
  t.equal(((ws as unknown as { _socket: TLSSocket })._socket).getPeerCertificate().fingerprint256, seeded, 'on the certificate it was opened with')
  const uploaded = await upload
  t.same([uploaded.error, uploaded.status, uploaded.body, uploaded.certificate], [undefined, 200, JSON.stringify({ received: total }), seeded],
    'the upload begun before the renewal reached Immich whole, on its connection of the seeded certificate')
})
