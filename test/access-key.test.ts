import t from 'tap'
import { request } from 'undici'
import { rawExchange, startProxy, startUpstream } from './helper.js'

t.test('without ACCESS_KEY there is no guard', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url)
  const res = await request(proxy.url + '/api/server/ping')
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'immich')
})

t.test('ACCESS_KEY: only a request carrying one of the keys reaches Immich, without the key', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'first-key,second-key' })

  for (const headers of [{}, { 'x-access-key': 'wrong' }, { 'x-access-key': 'first-ke' }, { 'x-access-key': '' }, { 'x-access-key': 'first-key,second-key' }]) {
    const res = await request(proxy.url + '/api/assets', { headers })
    t.equal(res.statusCode, 403, `refused: ${JSON.stringify(headers)}`)
    t.match(res.headers['content-type'], /application\/json/)
    const body = await res.body.json() as { statusCode: number, message: string }
    t.equal(body.statusCode, 403)
    t.notMatch(JSON.stringify(body), /first-key|second-key/, 'the body never shows a key')
  }
  t.equal(upstream.requests.length, 0, 'no refused request reached Immich')

  for (const [name, key] of [['x-access-key', 'first-key'], ['X-Access-Key', 'second-key'], ['X-ACCESS-KEY', 'first-key']]) {
    const res = await request(proxy.url + '/photos', { headers: { [name]: key } })
    t.equal(res.statusCode, 200, `${name}: ${key} accepted`)
    const seen = await res.body.json() as Record<string, string>
    t.equal(seen['x-access-key'], undefined, 'the key is removed before Immich')
  }
  t.equal(upstream.requests.length, 3)
})

t.test('a request with the key header twice is refused', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k' })
  const response = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Access-Key: k\r\nX-Access-Key: k\r\nConnection: close\r\n\r\n')
  t.match(response, /^HTTP\/1\.1 403 /)
  t.equal(upstream.requests.length, 0)
})

t.test('a WebSocket upgrade without the key is refused before any byte reaches Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  let upgrades = 0
  upstream.server.on('upgrade', (req, socket) => { upgrades++; socket.destroy() })
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k' })
  const handshake = 'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
  const refused = await rawExchange(proxy.port, handshake + 'X-Access-Key: nope\r\n\r\n')
  t.match(refused, /^HTTP\/1\.1 403 /)
  t.match(refused, /"statusCode":403/)
  t.equal(upgrades, 0)
  t.equal(upstream.requests.length, 0)
})
