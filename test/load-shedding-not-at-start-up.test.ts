// The event loop is blocked while an app starts (plugins, certificates); that is not load. A
// start-up block longer than LOAD_SHED_EVENT_LOOP_DELAY must not shed the first requests.
import t from 'tap'
import Fastify from 'fastify'
import { request } from 'undici'
import loadShedding from '../plugins/observability/load-shedding.js'

function block (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* a plugin doing synchronous start-up work */ }
}

t.test('a slow start-up is not counted as load', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, { maxEventLoopDelay: 200, maxRssBytes: 0 })
  await app.register(async () => { block(1500) })
  app.get('/ping', async () => ({ res: 'pong' }))
  const address = await app.listen({ port: 0, host: '127.0.0.1' })

  // the first two one-second samples after the block: every request answered
  const statuses: number[] = []
  const until = Date.now() + 2500
  while (Date.now() < until) {
    const response = await request(address + '/ping')
    await response.body.dump()
    statuses.push(response.statusCode)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(statuses.length > 10, `${statuses.length} requests`)
  t.same(statuses.filter(status => status !== 200), [], 'none shed')
})
