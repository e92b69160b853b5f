// An operator lifts the brake's cool-down from the admin listener, for one client or for all:
// app users behind the same address as a guesser otherwise wait it out. Only loopback peers
// may: the admin listener may be opened to a metrics scraper, and a guesser who could clear the
// brake would have none.
import t from 'tap'
import { Client, request } from 'undici'
import { startUpstream } from './helper.js'
import { statusWith } from './helpers/access-key.js'
import { startListeners } from './helpers/ops.js'

const KEY = 'the-right-key'

async function clear (adminUrl: string, query = ''): Promise<{ status: number, body: unknown }> {
  const response = await request(`${adminUrl}/access-key/brake/clear${query}`, { method: 'POST' })
  return { status: response.statusCode, body: await response.body.json() }
}

t.test('POST /access-key/brake/clear?client=<address> lifts that client\'s cool-down; without, everyone\'s', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const listeners = await startListeners(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2' })
  const url = listeners.url + '/api/server/ping'
  const other = new Client(listeners.url, { localAddress: '127.0.0.2' })
  t.teardown(() => other.close())
  for (const guess of ['guess-1', 'guess-2']) {
    t.equal(await statusWith(url, guess), 403)
    t.equal(await statusWith(url, guess, other), 403)
  }
  t.equal(await statusWith(url, KEY), 429, '127.0.0.1 is braked')
  t.equal(await statusWith(url, KEY, other), 429, '127.0.0.2 is braked')

  t.same(await clear(listeners.adminUrl, '?client=127.0.0.2'), { status: 200, body: { cleared: 1 } })
  t.equal(await statusWith(url, KEY, other), 200, '127.0.0.2 may come in again')
  t.equal(await statusWith(url, KEY), 429, '127.0.0.1 still waits')

  t.same(await clear(listeners.adminUrl), { status: 200, body: { cleared: 1 } })
  t.equal(await statusWith(url, KEY), 200, 'everyone may come in again')
  t.same(await clear(listeners.adminUrl, '?client=not-an-address'), { status: 400, body: { statusCode: 400, error: 'Bad Request', message: 'client must be an IP address' } })
})

t.test('the admin route refuses peers that are not loopback', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const listeners = await startListeners(t, upstream.url, { ACCESS_KEY: KEY, ADMIN_HOST: '0.0.0.0' })
  const { networkInterfaces } = await import('node:os')
  const address = Object.values(networkInterfaces()).flat().find(info => info?.family === 'IPv4' && !info.internal)?.address
  if (address === undefined) throw new Error('this test needs a non-loopback IPv4 address')
  const client = new Client(`http://${address}:${listeners.adminPort}`, { localAddress: address })
  t.teardown(() => client.close())
  const response = await client.request({ method: 'POST', path: '/access-key/brake/clear' })
  t.equal(response.statusCode, 403, `from ${address}`)
  t.same(await response.body.json(), { statusCode: 403, error: 'Forbidden', message: 'only a loopback client may clear the brake' })
})
