// An IPv6 client counted per /64 could rotate through the 65 536 /64s of a /48 and guess
// ACCESS_KEY_MAX_FAILURES - 1 times in each. Failures are also counted per /48, with three times
// the allowance: rotating /64s buys a guesser at most that, and a household's devices on a few
// /64s of one /48 are not locked out by one of them.
import t from 'tap'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'

const KEY = 'the-right-key'

t.test('one guess from each of many /64s of one /48: the /48 is braked after three allowances', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2', TRUST_PROXY: 'loopback' })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())
  const from = async (address: string, key: string): Promise<number> => {
    const response = await client.request({ method: 'GET', path: '/api/server/ping', headers: { 'x-forwarded-for': address, 'x-access-key': key } })
    await response.body.dump()
    return response.statusCode
  }

  // one guess per /64: never two from the same /64
  for (let i = 1; i <= 6; i++) t.equal(await from(`2001:db8:7:${i.toString(16)}::1`, `guess-${i}`), 403, `guess ${i} from /64 number ${i}`)
  t.equal(await from('2001:db8:7:ff::1', KEY), 429, 'six guesses (3 x 2) from one /48: a /64 it has not used is braked too')
  t.equal(await from('2001:db8:7:1::1', KEY), 429, 'and one it has used')
  t.equal(await from('2001:db8:8:1::1', KEY), 200, 'the next /48 is not')
  t.equal(await from('203.0.113.9', KEY), 200, 'nor an IPv4 client')
})

t.test('a few /64s of one /48 under the allowance are not braked', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2', TRUST_PROXY: 'loopback' })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())
  const from = async (address: string, key: string): Promise<number> => {
    const response = await client.request({ method: 'GET', path: '/', headers: { 'x-forwarded-for': address, 'x-access-key': key } })
    await response.body.dump()
    return response.statusCode
  }
  for (let i = 1; i <= 5; i++) t.equal(await from(`2001:db8:7:${i}::1`, 'wrong'), 403)
  t.equal(await from('2001:db8:7:ff::1', KEY), 200, 'five guesses from one /48 stay under 3 x 2')
})
