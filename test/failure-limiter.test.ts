// The brake's arithmetic with a hand-held clock: the window, the cool-down, the bounded memory
// that never forgets a cool-down, and what counts as one client (an IPv4 address, an IPv6 /64,
// and the /48 around it).
import t from 'tap'
import { FailureLimiter, PREFIX_ALLOWANCE, addressGroup } from '../plugins/access-key/failure-limiter.js'

t.test('maxFailures within the window start the cool-down; it ends on time', async t => {
  const limiter = new FailureLimiter({ maxFailures: 3, windowMs: 10_000, cooldownMs: 60_000 })
  t.equal(limiter.fail('a', 0), false)
  t.equal(limiter.fail('a', 5_000), false)
  t.equal(limiter.retryAfter('a', 5_000), 0)
  t.equal(limiter.fail('a', 9_000), true, 'the third failure within 10 s')
  t.equal(limiter.retryAfter('a', 9_000), 60_000)
  t.equal(limiter.retryAfter('a', 68_999), 1)
  t.equal(limiter.retryAfter('a', 69_000), 0, 'over at the end of the cool-down')
  t.equal(limiter.retryAfter('b', 9_000), 0, 'another client is untouched')
})

t.test('failures older than the window are forgotten', async t => {
  const limiter = new FailureLimiter({ maxFailures: 2, windowMs: 1_000, cooldownMs: 60_000 })
  limiter.fail('a', 0)
  t.equal(limiter.fail('a', 1_001), false, 'the first failure is outside the window')
  t.equal(limiter.fail('a', 1_500), true)
})

t.test('a full table forgets no cool-down: newcomers share their /16 bucket instead', async t => {
  const limiter = new FailureLimiter({ maxFailures: 2, windowMs: 1_000, cooldownMs: 60_000, maxEntries: 3 })
  limiter.fail('192.0.2.1', 0)
  t.equal(limiter.fail('192.0.2.1', 0), true, '192.0.2.1 is braked')
  limiter.fail('192.0.2.2', 0)
  limiter.fail('192.0.2.3', 0)
  for (let i = 0; i < 10_001; i++) limiter.fail(`10.${i >> 8 & 255}.${i & 255}.1`, 100)
  t.ok(limiter.retryAfter('192.0.2.1', 100) > 0, 'after 10 001 other addresses failed, 192.0.2.1 is still braked')
  t.equal(limiter.retryAfter('192.0.2.2', 100), 0, 'a live entry under its allowance is not braked')
  t.equal(limiter.fail('192.0.2.2', 100), true, 'and keeps its count: its second failure brakes it')

  const full = new FailureLimiter({ maxFailures: 2, windowMs: 1_000, cooldownMs: 60_000, maxEntries: 10 })
  for (let i = 0; i < 10; i++) full.fail(`192.0.2.${i}`, 0)
  full.fail('198.51.100.7', 0)
  t.equal(full.retryAfter('198.51.100.7', 0), 0, 'one failure in the shared bucket')
  full.fail('198.51.7.7', 0)
  t.ok(full.retryAfter('198.51.100.7', 0) > 0, 'a second one from a neighbour in 198.51.0.0/16 brakes the bucket')
  t.ok(full.retryAfter('198.51.200.1', 0) > 0, 'for every newcomer in it')
  t.equal(full.retryAfter('203.0.113.1', 0), 0, 'not for another /16')
  t.equal(full.retryAfter('192.0.2.3', 0), 0, 'nor for a client with an entry of its own')
})

t.test('past the shared buckets, one bucket for everyone; entries that are over make room again', async t => {
  const limiter = new FailureLimiter({ maxFailures: 2, windowMs: 1_000, cooldownMs: 5_000, maxEntries: 10 })
  for (let i = 0; i < 10; i++) limiter.fail(`192.0.2.${i}`, 0)
  limiter.fail('10.1.0.1', 0)
  t.equal(limiter.fail('10.2.0.1', 0), false, 'the one shared bucket (10 / 10) is taken: everyone\'s bucket')
  t.equal(limiter.fail('10.3.0.1', 0), true, 'two failures in everyone\'s bucket')
  t.ok(limiter.retryAfter('172.16.0.1', 0) > 0, 'newcomers from anywhere wait')
  t.equal(limiter.retryAfter('192.0.2.5', 0), 0, 'clients with an entry of their own do not')
  t.equal(limiter.fail('172.16.0.1', 1_500), false, 'windows over: the sweep made room, a newcomer has its own entry')
  t.equal(limiter.retryAfter('172.16.0.1', 1_500), 0)
  t.ok(limiter.retryAfter('172.16.9.9', 1_500) > 0, 'everyone\'s cool-down is not swept before it ends')
})

t.test('IPv6: each /64 has the allowance, and its /48 three times it', async t => {
  const limiter = new FailureLimiter({ maxFailures: 2, windowMs: 10_000, cooldownMs: 60_000 })
  t.equal(PREFIX_ALLOWANCE, 3)
  for (let i = 1; i <= 5; i++) t.equal(limiter.fail(`2001:db8:1:${i}::1`, 0), false, `/64 number ${i}`)
  t.equal(limiter.retryAfter('2001:db8:1:ff::1', 0), 0)
  t.equal(limiter.fail('2001:db8:1:6::1', 0), true, 'the sixth failure from the /48')
  t.ok(limiter.retryAfter('2001:db8:1:ffff:1::1', 0) > 0, 'every /64 of the /48 waits')
  t.equal(limiter.retryAfter('2001:db8:2::1', 0), 0, 'another /48 does not')
  t.equal(limiter.fail('2001:db8:9:1::1', 0), false)
  t.equal(limiter.fail('2001:db8:9:1::2', 0), true, 'one /64 is braked on its own allowance')
  t.equal(limiter.retryAfter('2001:db8:9:2::1', 0), 0, 'its /48 is not, yet')
})

t.test('clear: one client, or everyone, with the cool-downs lifted counted', async t => {
  const limiter = new FailureLimiter({ maxFailures: 1, windowMs: 10_000, cooldownMs: 60_000 })
  limiter.fail('192.0.2.1', 0)
  limiter.fail('192.0.2.2', 0)
  limiter.fail('2001:db8:1:1::1', 0)
  t.equal(limiter.clear('192.0.2.1', 0), 1)
  t.equal(limiter.retryAfter('192.0.2.1', 0), 0)
  t.ok(limiter.retryAfter('192.0.2.2', 0) > 0)
  t.equal(limiter.clear('2001:db8:1:1::9', 0), 1, 'an IPv6 client by any address of its /64')
  t.equal(limiter.retryAfter('2001:db8:1:1::1', 0), 0)
  t.equal(limiter.clear(undefined, 0), 1)
  t.equal(limiter.retryAfter('192.0.2.2', 0), 0)
})

t.test('addressGroup: IPv4 as it is, IPv6 by its /64, mapped IPv4 as IPv4', async t => {
  const cases: Array<[string, string]> = [
    ['192.0.2.1', '192.0.2.1'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2:FFFF::9', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['not-an-address', 'not-an-address']
  ]
  for (const [address, group] of cases) t.equal(addressGroup(address), group, address)
})
