// While the main listener sheds load, /readyz on the admin listener says so, so that a load
// balancer sends traffic elsewhere; it is ready again once the loop is calm. The proxy is
// built in this process so that the test can hold its event loop.
import t from 'tap'
import { startUpstream } from './helper.js'
import { getJson, overload, startListeners } from './helpers/ops.js'

t.test('/readyz is 503 with underPressure: true while new requests are shed', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const proxy = await startListeners(t, upstream.url, { LOAD_SHED_EVENT_LOOP_DELAY: '50ms' })
  t.same(await getJson(proxy.adminUrl + '/readyz'), {
    status: 200,
    body: { status: 'ready', immich: 'up', underPressure: false, closing: false }
  })

  let shedding = false
  let readiness: unknown
  for (let attempt = 1; attempt <= 3 && !shedding; attempt++) {
    await overload(2200)
    // the main listener and the probe, asked in the same moment
    const [main, ready] = await Promise.all([getJson(proxy.url + '/api/server/ping'), getJson(proxy.adminUrl + '/readyz')])
    shedding = main.status === 503
    readiness = ready
  }
  t.ok(shedding, 'the main listener sheds new requests')
  t.same(readiness, {
    status: 503,
    body: { status: 'not ready', immich: 'up', underPressure: true, closing: false }
  }, 'and readiness reports it')

  let ready: unknown
  for (let attempt = 1; attempt <= 30; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 200))
    ready = await getJson(proxy.adminUrl + '/readyz')
    if ((ready as { status: number }).status === 200) break
  }
  t.same(ready, { status: 200, body: { status: 'ready', immich: 'up', underPressure: false, closing: false } }, 'ready again once calm')
})
