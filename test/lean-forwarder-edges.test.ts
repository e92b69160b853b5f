// Edges of the request path that reply-from used to decide for us (plugins/lib/forward.ts):
// a body on a method Fastify does not parse, interim 1xx answers, repeated response fields.
import t from 'tap'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startProxy, startUpstream, text } from './helper.js'

t.test('a GET, DELETE or OPTIONS that declares a body has it forwarded whole', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    text(req).then(body => res.end(JSON.stringify({ method: req.method, body, length: req.headers['content-length'] ?? null, chunked: req.headers['transfer-encoding'] ?? null })), () => res.destroy())
  })
  const proxy = await startProxy(t, upstream.url)

  for (const method of ['GET', 'DELETE', 'OPTIONS']) {
    const res = await request(`${proxy.url}/api/search`, { method: method as 'GET', body: '{"q":"cat"}', headers: { 'content-type': 'application/json' } })
    t.same(await res.body.json(), { method, body: '{"q":"cat"}', length: '11', chunked: null }, `${method} with Content-Length`)
  }
  const chunked = await request(`${proxy.url}/api/search`, {
    method: 'GET',
    body: Readable.from(['{"q":', '"dog"}'])
  })
  const seen = await chunked.body.json() as { method: string, body: string, length: string | null, chunked: string | null }
  t.same([seen.method, seen.body], ['GET', '{"q":"dog"}'], 'GET with a chunked body')
  // undici frames a body that has fully arrived by its length, one still arriving as chunked
  t.ok((seen.length === '11') !== (seen.chunked === 'chunked'), `one framing: ${JSON.stringify(seen)}`)

  // over BODY_LIMIT: a GET's chunked body is counted like any other
  const limited = await startProxy(t, upstream.url, { BODY_LIMIT: '8' })
  const over = await request(`${limited.url}/api/search`, { method: 'GET', body: Readable.from(['{"q":', '"a long query"}']) })
  t.equal(over.statusCode, 413, 'a chunked GET body over BODY_LIMIT is refused')
  await over.body.dump()

  const none = await request(`${proxy.url}/api/search`)
  t.same(await none.body.json(), { method: 'GET', body: '', length: null, chunked: null }, 'a GET without a body gains no framing')
})

t.test('an interim 103 from Immich is not passed on; the final answer is', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('final')
  })
  const proxy = await startProxy(t, upstream.url)
  const res = await request(`${proxy.url}/`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers.link, undefined, 'the hint did not leak into the final headers')
  t.equal(await res.body.text(), 'final')
})

t.test('repeated response fields reach the client as separate fields, hop-by-hop ones named in Connection do not', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/'])
    res.setHeader('connection', 'x-immich-private, keep-alive')
    res.setHeader('x-immich-private', 'secret-hop')
    res.setHeader('x-kept', 'yes')
    res.end('ok')
  })
  const proxy = await startProxy(t, upstream.url)
  const res = await request(`${proxy.url}/`)
  t.same(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'])
  t.equal(res.headers['x-immich-private'], undefined)
  t.equal(res.headers['x-kept'], 'yes')
  t.equal(await res.body.text(), 'ok')
})
