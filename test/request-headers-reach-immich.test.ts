import t from 'tap'
import { Client } from 'undici'
import { rawExchange, startProxy, startUpstream } from './helper.js'

t.test('every end-to-end request header reaches Immich unchanged', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end())
  const proxy = await startProxy(t, upstream.url)
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  const sent = {
    cookie: 'immich_access_token=tok%3Den; immich_auth_type=password; immich_is_authenticated=true',
    authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig',
    'x-api-key': 'a1B2c3D4e5F6',
    'x-immich-checksum': 'qUqP5cyxm6YcTAhz05Hph5gvu9M=',
    'x-immich-user-token': 'user-token-123',
    'x-immich-custom': 'value with  two spaces, a comma; and "quotes"',
    'user-agent': 'Immich_Android_1.131.3',
    accept: 'application/json'
  }
  const res = await client.request({ path: '/api/assets', method: 'POST', headers: sent, body: '{}' })
  t.equal(res.statusCode, 200)
  await res.body.dump()

  const received = upstream.requests[0].headers
  for (const [name, value] of Object.entries(sent)) t.equal(received[name], value, name)
})

t.test('several Cookie lines and repeated custom headers arrive with every value', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end())
  const proxy = await startProxy(t, upstream.url)

  const response = await rawExchange(proxy.port, [
    'GET /api/users/me HTTP/1.1',
    'Host: immich.test',
    'Cookie: immich_access_token=abc',
    'Cookie: immich_auth_type=password',
    'X-Custom: one',
    'X-Custom: two',
    'Connection: close',
    '', ''
  ].join('\r\n'))
  t.match(response, /^HTTP\/1\.1 200 /)
  const received = upstream.requests[0].headersDistinct
  t.same(received.cookie, ['immich_access_token=abc; immich_auth_type=password'], 'joined with "; " as RFC 9113 §8.2.3 and Node do')
  t.same(received['x-custom'], ['one, two'])
})
