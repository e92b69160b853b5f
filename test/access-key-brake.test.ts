// The brute-force brake: after ACCESS_KEY_MAX_FAILURES wrong keys from one client within
// ACCESS_KEY_FAILURE_WINDOW, everything from that client gets 429 + Retry-After for
// ACCESS_KEY_COOLDOWN, the right key included (else guessing would go on, with 429 as the answer
// to a wrong guess and 200 to the right one). Only wrong keys count: a request with no key is a
// browser or app that has not been set up yet, not a guess, and a request with the key is never
// slowed and never counted.
import t from 'tap'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { statusWith } from './helpers/access-key.js'
import { waitFor } from './helpers/wait.js'

const KEY = 'the-right-key'

async function refusal (url: string, headers: Record<string, string>): Promise<{ status: number, retryAfter?: string, body: unknown }> {
  const client = new Client(new URL(url).origin)
  try {
    const response = await client.request({ method: 'GET', path: new URL(url).pathname, headers })
    return { status: response.statusCode, retryAfter: response.headers['retry-after'] as string | undefined, body: await response.body.json() }
  } finally {
    await client.close()
  }
}

t.test('three wrong keys: 429 with Retry-After for everything, the right key too, until the cool-down ends', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '3', ACCESS_KEY_COOLDOWN: '1s' })
  const url = proxy.url + '/api/server/ping'
  t.equal(await statusWith(url, KEY), 200, 'before: the key works')
  for (const guess of ['guess-1', 'guess-2', 'guess-3']) t.equal(await statusWith(url, guess), 403, guess)

  const braked = await refusal(url, { 'x-access-key': KEY })
  t.equal(braked.status, 429, 'the right key is braked too')
  t.equal(braked.retryAfter, '1', 'Retry-After: the cool-down in whole seconds')
  t.match(braked.body, { statusCode: 429, code: 'IMMICH_PROXY_ACCESS_KEY_FAILURES' })
  t.equal((await refusal(url, {})).status, 429, 'no key: 429 as well')
  t.equal(upstream.requests.length, 1, 'nothing braked reached Immich')

  const since = Date.now()
  await waitFor(async () => await statusWith(url, KEY) === 200, 5000, 'the end of the cool-down', { intervalMs: 100 })
  const waited = Date.now() - since
  t.comment(`the key worked again ${waited} ms later`)
  t.equal(await statusWith(url, 'guess-4'), 403, 'the count starts over: one guess is a 403 again')
})

t.test('requests without a key are not guesses; requests with the key are neither counted nor slowed', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '3' })
  const url = proxy.url + '/photos'

  for (let i = 0; i < 20; i++) t.equal(await statusWith(url), 403, `no key ${i + 1}`)
  t.equal(await statusWith(url, KEY), 200, 'twenty keyless requests started no brake')

  t.equal(await statusWith(url, 'guess-1'), 403)
  t.equal(await statusWith(url, 'guess-2'), 403)
  for (let i = 0; i < 50; i++) t.equal(await statusWith(url, KEY), 200, `with the key ${i + 1}`)
  t.equal(await statusWith(url, 'guess-3'), 403, 'the third guess: successes in between neither counted nor forgave')
  t.equal(await statusWith(url, KEY), 429, 'three guesses in the window: braked')
})

t.test('guesses spread wider than ACCESS_KEY_FAILURE_WINDOW do not add up', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '3', ACCESS_KEY_FAILURE_WINDOW: '1s' })
  const url = proxy.url + '/'
  t.equal(await statusWith(url, 'guess-1'), 403)
  t.equal(await statusWith(url, 'guess-2'), 403)
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.equal(await statusWith(url, 'guess-3'), 403)
  t.equal(await statusWith(url, 'guess-4'), 403)
  t.equal(await statusWith(url, KEY), 200, 'four guesses, never three within a second')
})

t.test('ACCESS_KEY_MAX_FAILURES=0 turns the brake off', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '0' })
  for (let i = 0; i < 30; i++) t.equal(await statusWith(proxy.url + '/', `guess-${i}`), 403)
  t.equal(await statusWith(proxy.url + '/', KEY), 200)
})

t.test('the brake is per client: another address is not locked out', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2' })
  // Linux routes all of 127.0.0.0/8 to lo: a second client address without any set-up
  const other = new Client(proxy.url, { localAddress: '127.0.0.2' })
  t.teardown(() => other.close())
  for (const guess of ['guess-1', 'guess-2']) t.equal(await statusWith(proxy.url + '/', guess), 403)
  t.equal(await statusWith(proxy.url + '/', KEY), 429, '127.0.0.1 is braked')
  t.equal(await statusWith(proxy.url + '/', KEY, other), 200, '127.0.0.2 is not')
  t.equal(upstream.requests.at(-1)?.headers['x-real-ip'], '127.0.0.2')
})

t.test('behind a trusted proxy the client is the forwarded one; IPv6 clients are counted per /64', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2', TRUST_PROXY: 'loopback' })
  const from = async (client: string, key: string): Promise<number> => {
    const c = new Client(proxy.url)
    try {
      const response = await c.request({ method: 'GET', path: '/', headers: { 'x-forwarded-for': client, 'x-access-key': key } })
      await response.body.dump()
      return response.statusCode
    } finally {
      await c.close()
    }
  }
  t.equal(await from('203.0.113.5', 'guess-1'), 403)
  t.equal(await from('203.0.113.5', 'guess-2'), 403)
  t.equal(await from('203.0.113.5', KEY), 429, '203.0.113.5 is braked')
  t.equal(await from('203.0.113.6', KEY), 200, 'its neighbour is not')

  t.equal(await from('2001:db8:1:2::1', 'guess-1'), 403)
  t.equal(await from('2001:db8:1:2:a:b:c:d', 'guess-2'), 403, 'a second address of the same /64')
  t.equal(await from('2001:db8:1:2:ffff::9', KEY), 429, 'the whole /64 is braked')
  t.equal(await from('2001:db8:1:3::1', KEY), 200, 'the next /64 is not')
  t.equal(await from('::ffff:203.0.113.7', KEY), 200, 'an IPv4-mapped address is its IPv4 client, not one /64 for all')
})
