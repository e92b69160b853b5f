// The guard stands in front of everything: every method on every path (the well-known route
// included, but for GET/HEAD of the discovery document itself, see
// well-known-immich-without-access-key.test.ts) and every WebSocket upgrade, and only an exact,
// single X-Access-Key passes. Immich never sees the key.
import t from 'tap'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { Client } from 'undici'
import WebSocket from 'ws'
import { rawExchange, startProxy, startUpstream, text } from './helper.js'
import { openClient, rawUpgrade, startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

const KEY = 'correct-horse-battery'
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']
const PATHS = ['/', '/photos/0b5c0f3e', '/api/server/ping', '/.well-known/immich', '/api/socket.io/?EIO=4&transport=polling', '/favicon.ico?v=2']
const discovery = (method: string, path: string): boolean => path === '/.well-known/immich' && (method === 'GET' || method === 'HEAD')

t.test('every method on every path: 403 without the key, Immich reached without it with the key', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url, key: req.headers['x-access-key'] ?? null }))
  })
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '0' })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  for (const method of METHODS) {
    for (const path of PATHS) {
      if (discovery(method, path)) continue
      for (const headers of [{}, { 'x-access-key': 'correct-horse' }, { 'x-access-key': KEY + ' x' }]) {
        const refused = await client.request({ method, path, headers })
        t.equal(refused.statusCode, 403, `${method} ${path} ${JSON.stringify(headers)}`)
        await refused.body.dump()
      }
    }
  }
  t.equal(upstream.requests.length, 0, 'nothing refused reached Immich')

  for (const method of METHODS) {
    for (const path of PATHS) {
      const passed = await client.request({ method, path, headers: { 'x-access-key': KEY } })
      t.equal(passed.statusCode, 200, `${method} ${path} with the key`)
      if (method === 'HEAD') {
        await passed.body.dump()
        continue
      }
      t.same(await passed.body.json(), { method, url: path, key: null }, `${method} ${path} reached Immich without the key`)
    }
  }
  t.equal(upstream.requests.length, METHODS.length * PATHS.length)
  t.ok(upstream.requests.every(req => !req.rawHeaders.some(name => name.toLowerCase() === 'x-access-key')), 'no raw header carried it either')
})

t.test('the header name in any case; the value exact; the header once', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '0' })
  for (const name of ['x-access-key', 'X-Access-Key', 'X-ACCESS-KEY', 'x-AcCeSs-KeY']) {
    const answer = await rawExchange(proxy.port, `GET /api/users/me HTTP/1.1\r\nHost: immich.test\r\n${name}: ${KEY}\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 200 /, name)
    t.notMatch(answer, /correct-horse/, 'Immich did not get the key')
  }
  // header folding aside, a repeated header is what a front proxy that adds its own makes
  for (const repeat of [`X-Access-Key: ${KEY}\r\nX-Access-Key: ${KEY}`, `X-Access-Key: ${KEY}\r\nx-access-key: other`, `x-access-key: other\r\nX-Access-Key: ${KEY}`]) {
    const answer = await rawExchange(proxy.port, `GET /api/users/me HTTP/1.1\r\nHost: immich.test\r\n${repeat}\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 403 /, JSON.stringify(repeat))
  }
  t.equal(upstream.requests.length, 4)
})

t.test('a WebSocket upgrade: tunnelled with the key, refused before Immich without it', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '0' })
  const socketUrl = `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`

  for (const headers of [{}, { 'x-access-key': 'wrong' }, { 'X-ACCESS-KEY': KEY.toUpperCase() }]) {
    const refused = new WebSocket(socketUrl, { headers })
    t.teardown(() => refused.terminate())
    refused.on('error', () => {})
    const [, response] = await within(once(refused, 'unexpected-response'), 5000, 'the refusal') as [unknown, IncomingMessage]
    t.equal(response.statusCode, 403, JSON.stringify(headers))
    t.equal(JSON.parse(await text(response)).statusCode, 403)
  }
  const handshake = 'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: immich.test\r\nConnection: Upgrade\r\n' +
    'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
  const twice = await rawUpgrade(t, proxy.port, `${handshake}X-Access-Key: ${KEY}\r\nX-Access-Key: ${KEY}\r\n\r\n`)
  t.match(twice.head, /^HTTP\/1\.1 403 /, 'the header twice is refused on an upgrade too')
  t.equal(upstream.upgrades.length, 0, 'Immich saw none of the refused upgrades')
  t.equal(upstream.sockets.size, 0, 'not even a connection')

  const client = await openClient(t, socketUrl, [], { headers: { 'X-Access-Key': KEY } })
  client.send('hello through the guard')
  t.equal(String((await within(once(client, 'message'), 5000, 'the echo'))[0]), 'hello through the guard')
  t.equal(upstream.upgrades.length, 1)
  t.equal(upstream.upgrades[0].headers['x-access-key'], undefined, 'the key stayed at the proxy')
})
