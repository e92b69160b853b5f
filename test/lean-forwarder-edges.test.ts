// Edges of the request path that reply-from used to decide for us (plugins/forwarding/forward.ts):
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

t.test('a whole small answer keeps Immich\'s headers: no Content-Type is added, 204 and 304 stay bodiless', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/untyped') {
      res.writeHead(200, { 'content-length': '2' })
      res.end('ok')
    } else if (req.url === '/typed') {
      res.writeHead(200, { 'content-type': 'application/json', 'x-immich-cid': 'abc' })
      res.end('{"a":1}')
    } else if (req.url === '/none') {
      res.writeHead(204, { 'x-immich-cid': 'none' })
      res.end()
    } else {
      res.writeHead(304, { etag: '"v1"' })
      res.end()
    }
  })
  const proxy = await startProxy(t, upstream.url)

  const untyped = await request(`${proxy.url}/untyped`)
  t.equal(untyped.headers['content-type'], undefined, 'no Content-Type invented')
  t.equal(await untyped.body.text(), 'ok')

  const typed = await request(`${proxy.url}/typed`)
  t.same([typed.headers['content-type'], typed.headers['content-length'], typed.headers['x-immich-cid']], ['application/json', '7', 'abc'])
  t.equal(await typed.body.text(), '{"a":1}')

  const none = await request(`${proxy.url}/none`)
  t.equal(none.statusCode, 204)
  t.same([none.headers['content-length'], none.headers['content-type'], none.headers['x-immich-cid']], [undefined, undefined, 'none'])
  t.equal(await none.body.text(), '')

  const notModified = await request(`${proxy.url}/photo`, { headers: { 'if-none-match': '"v1"' } })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.headers.etag, '"v1"')
  t.equal(await notModified.body.text(), '')
})
