// Two proxy instances (processes, as two containers behind a load balancer) sharing a Redis server
// through REDIS_URL: the access key brake counts the wrong keys of both; Redis stopped, both keep
// serving and each counts its own, with a warning; Redis back, shared again.
import t from 'tap'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { spawnServer, logged, type ServerProcess } from './helpers/ops.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const KEY = 'the-right-key-0123456789'

async function statusWith (proxy: ServerProcess, key: string): Promise<number> {
  const response = await request(`${proxy.url}/api/server/about`, { headers: { 'x-access-key': key } })
  await response.body.dump()
  return response.statusCode
}

async function guesses (proxy: ServerProcess, count: number): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < count; i++) statuses.push(await statusWith(proxy, `wrong-${i}`))
  return statuses
}

t.test('two instances with REDIS_URL: wrong keys add up across them; Redis down, each counts its own; back, shared again', async t => {
  const redis = await startRedis(t)
  const upstream = await startUpstream(t, (req, res) => res.end('{}'))
  const env = { UPSTREAM_URL: upstream.url, ACCESS_KEY: KEY, REDIS_URL: redis.url, ACCESS_KEY_COOLDOWN: '2s', LOG_LEVEL: 'info' }
  const [one, two] = await Promise.all([spawnServer(t, env), spawnServer(t, env)])
  const shared = (proxy: ServerProcess): boolean => logged(proxy.lines, 'REDIS_URL: the access key brake is shared through Redis at ' + redis.url).length > 0
  await waitFor(() => shared(one) && shared(two), 10_000, 'both instances to share the brake')

  t.same(await guesses(one, 6), Array(6).fill(403), 'six wrong keys on the first: 403 each')
  t.same(await guesses(two, 4), Array(4).fill(403), 'four on the second: the tenth in all starts the cool-down')
  // the others' failures arrive through Redis a moment after they are made
  const brakes = async (proxy: ServerProcess): Promise<void> => {
    await waitFor(async () => await statusWith(proxy, KEY) === 429, 2000, 'the cool-down (429)')
  }
  await brakes(two)
  t.pass('the second brakes: its four and the first\'s six make ten')
  await brakes(one)
  t.pass('the first brakes too, the right key included')
  t.same(await guesses(one, 1), [429], 'the eleventh gets 429')

  await redis.stop()
  const alone = (proxy: ServerProcess): boolean => logged(proxy.lines, `REDIS_URL: Redis at ${redis.url} is unreachable; the access key brake counts in this process only until it is back`).length > 0
  await waitFor(() => alone(one) && alone(two), 10_000, 'both to warn that Redis is gone')
  // the cool-down (2 s) over
  await waitFor(async () => await statusWith(one, KEY) === 200 && await statusWith(two, KEY) === 200, 10_000, 'the cool-down to end')
  t.pass('Redis down: both serve the right key')
  t.same(await guesses(one, 9), Array(9).fill(403), 'nine wrong keys on the first')
  t.same(await guesses(two, 9), Array(9).fill(403), 'nine on the second: not braked, each counts its own')
  t.same(await guesses(one, 1), [403], 'the first\'s own tenth starts its cool-down')
  t.equal(await statusWith(one, KEY), 429, 'the first brakes')
  t.equal(await statusWith(two, KEY), 200, 'the second, with nine of its own, does not')

  await redis.start()
  const back = (proxy: ServerProcess): boolean => logged(proxy.lines, `REDIS_URL: Redis at ${redis.url} is back; the access key brake is shared again`).length > 0
  await waitFor(() => back(one) && back(two), 15_000, 'both to say Redis is back')
  await waitFor(async () => await statusWith(one, KEY) === 200 && await statusWith(two, KEY) === 200, 10_000, 'the cool-down to end')
  // the second still has nine of its own in the window: one more on the first is its tenth
  t.same(await guesses(one, 1), [403], 'shared again: one wrong key on the first')
  await brakes(two)
  t.pass('is the second\'s tenth: it brakes')
  t.equal(await statusWith(one, KEY), 200, 'the first, with one of its own since its cool-down, does not')

  t.notOk(one.output().includes('redis://:') || two.output().includes('Unhandled error event'), 'nothing unhandled printed')
})

t.test('REDIS_URL with a password: never in the log', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{}'))
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, ACCESS_KEY: KEY, REDIS_URL: 'redis://:s3cret-pass@127.0.0.1:1', LOG_LEVEL: 'info' })
  await waitFor(() => logged(proxy.lines, 'REDIS_URL: Redis at redis://127.0.0.1:1 is unreachable; the access key brake counts in this process only until it is back').length > 0, 10_000, 'the warning')
  t.equal(await statusWith(proxy, KEY), 200, 'the proxy serves without Redis')
  t.notOk(proxy.output().includes('s3cret-pass'), 'the password is nowhere in the output')
})
