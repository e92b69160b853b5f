import t from 'tap'
import { startProxy, startUpstream } from './helper.js'

t.test("Node's server timers: no total request limit, idle limit = PROXY_TIMEOUT", async t => {
  const upstream = await startUpstream(t, (req, res) => res.end())

  const byDefault = await startProxy(t, upstream.url)
  t.equal(byDefault.app.server.requestTimeout, 0, "Node 20's 300 s requestTimeout does not apply")
  t.equal(byDefault.app.server.timeout, 600_000, 'connectionTimeout is the default PROXY_TIMEOUT, 600 s')
  t.equal(byDefault.app.server.keepAliveTimeout, 75_000, 'keep-alive as nginx keepalive_timeout 75s')

  const configured = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '90s' })
  t.equal(configured.app.server.requestTimeout, 0)
  t.equal(configured.app.server.timeout, 90_000, 'connectionTimeout follows PROXY_TIMEOUT')
})
