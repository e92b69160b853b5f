import t from 'tap'
import { startProxy } from './helper.js'
import { openClient, rawUpgrade, startWsUpstream } from './helpers/websocket.js'

t.test('the upgrade reaches Immich with every client header and the forwarded ones', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const target = '/api/socket.io/?EIO=4&transport=websocket&q=caf%C3%A9&a=1&a=2&path=%2Fx%20y&empty='
  const sent = {
    host: 'photos.example.test:8443',
    'x-immich-user-token': 'mobile-session-token',
    cookie: 'immich_access_token=abc123; immich_is_authenticated=true',
    authorization: 'Bearer abc123',
    'user-agent': 'Immich_Android_1.131.3',
    'x-custom-header': 'set in the mobile app settings',
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
    'x-real-ip': '198.51.100.1'
  }
  await openClient(t, `ws://127.0.0.1:${proxy.port}${target}`, [], { headers: sent })

  t.equal(upstream.upgrades.length, 1)
  const received = upstream.upgrades[0]
  t.equal(received.url, target, 'path and query byte for byte')
  t.equal(received.method, 'GET')
  for (const name of ['x-immich-user-token', 'cookie', 'authorization', 'user-agent', 'x-custom-header']) {
    t.equal(received.headers[name], sent[name as keyof typeof sent], name)
  }
  t.equal(received.headers.host, 'photos.example.test:8443', 'Host as the client sent it, port included')
  t.equal(received.headers['x-real-ip'], '127.0.0.1', 'X-Real-IP is the peer, not the client\'s claim')
  t.equal(received.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'the peer appended to the client\'s list')
  t.equal(received.headers['x-forwarded-proto'], 'http', 'the listener\'s scheme replaces the client\'s')
  t.equal(received.headers.upgrade, 'websocket')
  t.equal(received.headers.connection, 'Upgrade')
  t.equal(received.headers['sec-websocket-version'], '13')
  t.match(received.headers['sec-websocket-key'], /^[A-Za-z0-9+/]{22}==$/)
})

t.test('a target a client library would re-encode arrives byte for byte', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const target = "/api/socket.io/?EIO=4&transport=websocket&tags={x}|y&name=O'Brien&q=%2F%3F"
  const { head } = await rawUpgrade(t, proxy.port, [
    `GET ${target} HTTP/1.1`,
    'Host: immich.test',
    'Upgrade: websocket',
    'Connection: keep-alive, Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    'X-Immich-User-Token: raw-token',
    '', ''
  ].join('\r\n'))
  t.match(head, /^HTTP\/1\.1 101 /)
  t.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/i, 'the upstream\'s accept key comes back')
  t.equal(upstream.upgrades[0].url, target)
  t.equal(upstream.upgrades[0].headers['x-immich-user-token'], 'raw-token')
  t.equal(upstream.upgrades[0].headers.host, 'immich.test')
})
