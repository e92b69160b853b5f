import t, { type Test } from 'tap'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { startProxy, startUpstream, text } from './helper.js'
import { rawUpgrade, startWsUpstream } from './helpers/websocket.js'
import { request as fetchThrough } from 'undici'

// Sends one request with exactly these header lines (node:http keeps repeats and the Host as
// given) and returns the headers Immich received.
async function headersAtImmich (port: number, headers: Array<[string, string]>, path = '/api/server/ping'): Promise<IncomingHttpHeaders> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: headers.flat(), agent: false }, res => {
      text(res).then(body => resolve(JSON.parse(body)), reject)
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('Host, X-Real-IP, X-Forwarded-For and X-Forwarded-Proto as nginx sets them', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url)

  const plain = await headersAtImmich(proxy.port, [['Host', 'immich.example.org:8443']])
  t.equal(plain.host, 'immich.example.org:8443', 'Host as the client sent it, port included')
  t.equal(plain['x-real-ip'], '127.0.0.1', 'the peer address, not ::ffff:127.0.0.1')
  t.equal(plain['x-forwarded-for'], '127.0.0.1', 'just the peer when the client sent none')
  t.equal(plain['x-forwarded-proto'], 'http', "this listener's scheme")

  const forged = await headersAtImmich(proxy.port, [
    ['Host', 'immich.example.org:8443'],
    ['X-Forwarded-For', '198.51.100.7'],
    ['X-Forwarded-Proto', 'https']
  ])
  t.equal(forged['x-forwarded-for'], '198.51.100.7, 127.0.0.1', "the client's value, then the peer")
  t.equal(forged['x-forwarded-proto'], 'http', "a client's forged https is replaced")
  t.equal(forged['x-real-ip'], '127.0.0.1', 'a spoofed X-Forwarded-For from an untrusted peer does not move X-Real-IP')

  const repeated = await headersAtImmich(proxy.port, [
    ['Host', 'immich.example.org'],
    ['X-Forwarded-For', '198.51.100.7'],
    ['X-Forwarded-For', '203.0.113.9, 192.0.2.1']
  ])
  t.equal(repeated['x-forwarded-for'], '198.51.100.7, 203.0.113.9, 192.0.2.1, 127.0.0.1', 'several lines joined in order')
  t.equal(repeated['x-real-ip'], '127.0.0.1')
  t.equal(repeated.host, 'immich.example.org')
})

t.test('a trusted proxy in front keeps its X-Forwarded-* and names the real client', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url, { TRUST_PROXY: '127.0.0.1,10.0.0.0/8' })

  const behind = await headersAtImmich(proxy.port, [
    ['Host', 'immich.internal:2283'],
    ['X-Forwarded-For', '203.0.113.9, 10.1.2.3'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'photos.example.org']
  ])
  t.equal(behind['x-real-ip'], '203.0.113.9', 'walked from the right past trusted hops')
  t.equal(behind['x-forwarded-for'], '203.0.113.9, 10.1.2.3, 127.0.0.1')
  t.equal(behind['x-forwarded-proto'], 'https', "the trusted proxy's scheme is kept")
  t.equal(behind['x-forwarded-host'], 'photos.example.org', "the trusted proxy's host is kept")
  t.equal(behind.host, 'immich.internal:2283')

  const spoofed = await headersAtImmich(proxy.port, [
    ['Host', 'immich.internal:2283'],
    ['X-Forwarded-For', '10.9.9.9, 198.51.100.7, 10.1.2.3']
  ])
  t.equal(spoofed['x-real-ip'], '198.51.100.7', 'the walk stops at the first untrusted hop; what the client wrote to its left is not believed')
  t.equal(spoofed['x-forwarded-proto'], 'http', 'without an incoming value the listener scheme is used')
  t.equal(spoofed['x-forwarded-host'], 'immich.internal:2283', 'without an incoming value the Host is used')

  const sloppy = await headersAtImmich(proxy.port, [['Host', 'immich.internal'], ['X-Forwarded-For', '203.0.113.9,, 10.1.2.3,']])
  t.equal(sloppy['x-real-ip'], '203.0.113.9', 'empty entries are skipped, as nginx does')
  t.equal(sloppy['x-forwarded-for'], '203.0.113.9,, 10.1.2.3,, 127.0.0.1', 'the list itself is passed on as received')

  const unknown = await headersAtImmich(proxy.port, [['Host', 'immich.internal'], ['X-Forwarded-For', 'unknown, 10.1.2.3']])
  t.equal(unknown['x-real-ip'], '10.1.2.3', 'a non-address ends the walk at the last hop a trusted proxy vouched for')

  const direct = await headersAtImmich(proxy.port, [['Host', 'immich.internal:2283']])
  t.equal(direct['x-real-ip'], '127.0.0.1', 'no X-Forwarded-For: the trusted peer is the client')
})

t.test('a spoofed X-Forwarded-For from a peer outside TRUST_PROXY changes nothing', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url, { TRUST_PROXY: '10.0.0.0/8' })

  const spoofed = await headersAtImmich(proxy.port, [
    ['Host', 'immich.example.org:8443'],
    ['X-Forwarded-For', '203.0.113.9'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'evil.example']
  ])
  t.equal(spoofed['x-real-ip'], '127.0.0.1')
  t.equal(spoofed['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  t.equal(spoofed['x-forwarded-proto'], 'http')
  t.equal(spoofed['x-forwarded-host'], 'immich.example.org:8443', 'a client cannot choose the forwarded host')
})

// A client's own claims about the original request, as they would reach Immich on each path
const claims: Array<[string, string]> = [
  ['Forwarded', 'for=203.0.113.9;host=evil.example;proto=https'],
  ['X-Forwarded-Host', 'evil.example'],
  ['X-Forwarded-Port', '443']
]

async function claimsAtImmich (t: Test, env: Record<string, string>): Promise<Record<string, IncomingHttpHeaders>> {
  const upstream = await startWsUpstream(t)
  // the HTTP proxy and the well-known route reach the same upstream as plain requests
  upstream.server.removeAllListeners('request')
  upstream.server.on('request', (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url, env)
  const headers = [['Host', 'photos.example'], ...claims]
  const http = await headersAtImmich(proxy.port, headers as Array<[string, string]>, '/api/server/ping')
  const wellKnown = await headersAtImmich(proxy.port, headers as Array<[string, string]>, '/.well-known/immich')
  const { socket } = await rawUpgrade(t, proxy.port, [
    'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1', ...headers.map(([name, value]) => `${name}: ${value}`),
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''
  ].join('\r\n'))
  socket.destroy()
  return { 'HTTP proxy': http, 'well-known route': wellKnown, 'WebSocket tunnel': upstream.upgrades[0].headers }
}

t.test('Forwarded, X-Forwarded-Host and X-Forwarded-Port from a peer outside TRUST_PROXY do not reach Immich', async t => {
  for (const [path, seen] of Object.entries(await claimsAtImmich(t, { TRUST_PROXY: '10.0.0.0/8' }))) {
    t.equal(seen.forwarded, undefined, `${path}: Forwarded dropped`)
    t.equal(seen['x-forwarded-port'], undefined, `${path}: X-Forwarded-Port dropped`)
    t.equal(seen['x-forwarded-host'], 'photos.example', `${path}: X-Forwarded-Host is the Host`)
  }
})

t.test('a trusted proxy in front keeps its Forwarded, X-Forwarded-Host and X-Forwarded-Port', async t => {
  for (const [path, seen] of Object.entries(await claimsAtImmich(t, { TRUST_PROXY: '127.0.0.1' }))) {
    t.equal(seen.forwarded, claims[0][1], `${path}: Forwarded kept`)
    t.equal(seen['x-forwarded-host'], 'evil.example', `${path}: X-Forwarded-Host kept`)
    t.equal(seen['x-forwarded-port'], '443', `${path}: X-Forwarded-Port kept`)
  }
})

t.test('other forwarding claims (X-Forwarded-Server, -Prefix, -Ssl) reach Immich only from a trusted proxy', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const claims = { 'x-forwarded-server': 'evil', 'x-forwarded-prefix': '/evil', 'x-forwarded-ssl': 'on' }
  const untrusted = await startProxy(t, upstream.url)
  await (await fetchThrough(`${untrusted.url}/api/server/ping`, { headers: claims })).body.dump()
  const trusted = await startProxy(t, upstream.url, { TRUST_PROXY: 'loopback' })
  await (await fetchThrough(`${trusted.url}/api/server/ping`, { headers: claims })).body.dump()
  const [fromUntrusted, fromTrusted] = upstream.requests.map(req => req.headers)
  for (const name of Object.keys(claims)) {
    t.equal(fromUntrusted[name], undefined, `${name} dropped from an untrusted peer`)
    t.equal(fromTrusted[name], claims[name as keyof typeof claims], `${name} kept from a trusted proxy`)
  }
})
