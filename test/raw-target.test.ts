import t from 'tap'
import { Client } from 'undici'
import { rawExchange, startProxy, startUpstream } from './helper.js'

const targets = [
  '/api/assets/abc%2Fdef/thumbnail?size=preview&key=a%20b&key=c',
  '/api/search/metadata?q=caf%C3%A9&tags={x}|y&name=O%27Brien&a=1&a=2&empty=&flag',
  '/%7Euser/~tilde/a+b?x=%2F%3F%23%25&plus=a+b',
  '/'
]

t.test('every method and target reaches Immich byte for byte', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url }))
  })
  const proxy = await startProxy(t, upstream.url)
  const client = new Client(proxy.url)
  t.teardown(() => client.close())
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND', 'SEARCH']) {
    for (const path of targets) {
      const res = await client.request({ path, method })
      t.equal(res.statusCode, 200, `${method} ${path}`)
      t.same(await res.body.json(), { method, url: path }, `${method} ${path} arrives as sent`)
    }
  }
  const head = await client.request({ path: targets[0], method: 'HEAD' })
  t.equal(head.statusCode, 200)
  await head.body.dump()
  t.equal(upstream.requests.at(-1)?.url, targets[0])
  t.equal(upstream.requests.at(-1)?.method, 'HEAD')
})

t.test('an empty query and odd characters survive where client libraries would normalise them', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end(req.url))
  const proxy = await startProxy(t, upstream.url)
  for (const target of ['/api/server/ping?', '/a//b/?x=%zz&y=`^`', "/api/x?q='quoted'&q=%22"]) {
    const response = await rawExchange(proxy.port, `GET ${target} HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n`)
    t.match(response, /^HTTP\/1\.1 200 /, target)
    t.equal(upstream.requests.at(-1)?.url, target, `${target} arrives as sent`)
  }
})
