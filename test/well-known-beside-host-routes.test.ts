import t from 'tap'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import app from '../src/app.js'
import { parseConfig } from '../src/config.js'
import { serverOptions } from '../src/server-options.js'
import { startUpstream } from './helper.js'

t.test('/.well-known/immich reaches Immich while a host app answers the rest of /.well-known/', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ from: 'immich', url: req.url, headers: req.headers }))
  })
  const config = parseConfig({ UPSTREAM_URL: upstream.url, LOG_LEVEL: 'silent' })
  const host = Fastify(serverOptions(config))
  // e.g. an ACME http-01 responder, registered before the proxy
  host.get('/.well-known/*', async request => ({ from: 'host', url: request.url }))
  await host.register(app, config)
  await host.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => host.close())
  const base = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}`

  const immich = await request(`${base}/.well-known/immich`, { headers: { 'x-forwarded-for': '203.0.113.5' } })
  t.equal(immich.statusCode, 200)
  const answer = await immich.body.json() as { from: string, url: string, headers: Record<string, string> }
  t.equal(answer.from, 'immich', '/.well-known/immich goes to Immich')
  t.equal(answer.url, '/.well-known/immich')
  t.equal(answer.headers['x-real-ip'], '127.0.0.1', 'with the forwarded headers')
  t.equal(answer.headers['x-forwarded-for'], '203.0.113.5, 127.0.0.1')
  t.equal(answer.headers['x-forwarded-proto'], 'http')

  for (const path of ['/.well-known/other', '/.well-known/acme-challenge/tok3n']) {
    const local = await request(`${base}${path}`)
    t.equal(local.statusCode, 200, path)
    t.same(await local.body.json(), { from: 'host', url: path }, `${path} answered by the host app`)
  }
  t.equal(upstream.requests.length, 1, 'only /.well-known/immich reached Immich')

  const api = await request(`${base}/api/server/ping`)
  t.equal(((await api.body.json()) as { from: string }).from, 'immich', 'the rest still goes to Immich')
})
