import t from 'tap'
import { request } from 'undici'
import { startProxy } from './helper.js'
import { closedPort } from './helpers/timeouts.js'

t.test('an unreachable upstream gets 502 with a short JSON body that names no internal address', async t => {
  const port = await closedPort()
  const proxy = await startProxy(t, `http://127.0.0.1:${port}`)

  const cases = [
    { method: 'GET', path: '/api/server/ping' },
    { method: 'POST', path: '/api/assets', body: '{"deviceAssetId":"a"}' },
    { method: 'GET', path: '/photos/abc' },
    { method: 'GET', path: '/.well-known/immich' },
    { method: 'DELETE', path: '/api/assets' }
  ]
  for (const { method, path, body } of cases) {
    // a browser asks for HTML; /api/* must still answer JSON
    const res = await request(`${proxy.url}${path}`, { method, body, headers: { accept: 'text/html,application/xhtml+xml' } })
    const text = await res.body.text()
    t.equal(res.statusCode, 502, `${method} ${path}`)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', `${method} ${path}: JSON, never HTML`)
    t.same(JSON.parse(text), { statusCode: 502, error: 'Bad Gateway', message: 'Immich did not answer; is the server running?' })
    t.notMatch(text, String(port), 'the upstream port is not shown')
    t.notMatch(text, '127.0.0.1', 'the upstream address is not shown')
  }

  const head = await request(`${proxy.url}/api/server/ping`, { method: 'HEAD' })
  t.equal(head.statusCode, 502, 'HEAD too')
  await head.body.dump()
})

t.test('an upstream name that does not resolve gets 502, not the name', async t => {
  // a stopped Docker service: its name no longer resolves (.invalid never does, RFC 6761)
  const proxy = await startProxy(t, 'http://immich-server.invalid:2283')
  const res = await request(`${proxy.url}/api/server/ping`)
  const text = await res.body.text()
  t.equal(res.statusCode, 502)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.same(JSON.parse(text), { statusCode: 502, error: 'Bad Gateway', message: 'Immich did not answer; is the server running?' })
  t.notMatch(text, 'immich-server', 'the upstream name is not shown')
  t.notMatch(text, '2283', 'the upstream port is not shown')
})
