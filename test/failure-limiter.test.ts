// The brake's arithmetic with a hand-held clock: the window, the cool-down, the bounded memory,
// and what counts as one client (an IPv4 address, or an IPv6 /64).
import t from 'tap'
import { FailureLimiter, addressGroup } from '../plugins/lib/failure-limiter.js'

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

t.test('memory stays bounded: the oldest client is forgotten first', async t => {
  const limiter = new FailureLimiter({ maxFailures: 1, windowMs: 1_000, cooldownMs: 60_000, maxEntries: 3 })
  for (const client of ['a', 'b', 'c']) limiter.fail(client, 0)
  t.ok(limiter.retryAfter('a', 0) > 0)
  limiter.fail('d', 0)
  t.equal(limiter.retryAfter('a', 0), 0, 'a was the oldest')
  t.ok(limiter.retryAfter('b', 0) > 0 && limiter.retryAfter('d', 0) > 0)
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
