// The guard over HTTP/2 (what browsers and the timeline's many thumbnail requests use on the TLS
// listener): the same answers as over HTTP/1.1. HTTP/2 requests lack Node's headersDistinct, so
// the guard reads the header from rawHeaders, where a repeated field stays two entries.
import t from 'tap'
import { once } from 'node:events'
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import { startProxy, startUpstream } from './helper.js'

const KEY = 'h2-access-key'

async function h2Get (session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<{ status: number, body: string }> {
  const stream = session.request({ ':path': '/api/assets', ...headers })
  const [response] = await once(stream, 'response')
  let body = ''
  for await (const chunk of stream) body += String(chunk)
  return { status: Number(response[':status']), body }
}

t.test('over HTTP/2: the key passes once, is refused twice or wrong, and never reaches Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(JSON.stringify(req.headers)))
  const proxy = await startProxy(t, upstream.url, { TLS_SELF_SIGNED: 'true', ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '0' })
  const session = connect(proxy.url, { rejectUnauthorized: false })
  t.teardown(() => { session.destroy() })
  await once(session, 'remoteSettings')
  t.equal(session.alpnProtocol, 'h2', 'the client speaks HTTP/2')

  const passed = await h2Get(session, { 'x-access-key': KEY })
  t.equal(passed.status, 200)
  t.equal(JSON.parse(passed.body)['x-access-key'], undefined, 'Immich did not get the key')

  for (const headers of [{}, { 'x-access-key': 'wrong' }, { 'x-access-key': [KEY, KEY] }, { 'x-access-key': [KEY, 'other'] }]) {
    const refused = await h2Get(session, headers)
    t.equal(refused.status, 403, JSON.stringify(headers))
    t.equal(JSON.parse(refused.body).statusCode, 403)
  }
  t.equal(upstream.requests.length, 1)
})
