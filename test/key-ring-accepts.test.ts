// KeyRing.accepts compares SHA-256 digests with timingSafeEqual, so keys and guesses of any
// length meet as 32-byte buffers: no length check that would answer early, and no throw from
// timingSafeEqual on unequal lengths. No timing is measured here (that belongs in a benchmark);
// this proves the answers are right whatever the lengths.
import t from 'tap'
import { KeyRing, parseKeyFile } from '../plugins/access-key/key-ring.js'

const keys = ['k', 'ab', 'a-32-character-key-0123456789abc', 'x'.repeat(1000), 'clé-ünïcode-🔑']

t.test('accepts exactly the keys, whatever the lengths of keys and guesses', async t => {
  const ring = new KeyRing(keys)
  t.equal(ring.size, keys.length)
  for (const key of keys) t.ok(ring.accepts(key), `accepts ${key.slice(0, 12)} (${key.length})`)
  const guesses = [
    '', 'K', 'a', 'abc', 'b', 'kk', 'k ', ' k',
    'a-32-character-key-0123456789ab', 'a-32-character-key-0123456789abcd', 'A-32-character-key-0123456789abc',
    'x'.repeat(999), 'x'.repeat(1001), 'x'.repeat(100_000),
    'clé-ünïcode-', 'cle-unicode-🔑', 'k,ab', 'k\n'
  ]
  for (const guess of guesses) t.notOk(ring.accepts(guess), `refuses ${JSON.stringify(guess.slice(0, 40))} (${guess.length})`)
})

t.test('an empty ring accepts nothing, the empty string included', async t => {
  const ring = new KeyRing([])
  t.equal(ring.size, 0)
  for (const guess of ['', 'k', ' ']) t.notOk(ring.accepts(guess))
})

t.test('duplicates across the list and the file count once', async t => {
  t.equal(new KeyRing(['k', 'k', 'j']).size, 2)
})

t.test('parseKeyFile: one key per line; blank lines, comments and surrounding spaces dropped', async t => {
  t.same(parseKeyFile('# comment\r\n\r\n key one \nkey-two\r\n\t#indented comment\n#\nlast'), ['key one', 'key-two', 'last'])
  t.same(parseKeyFile(''), [])
  t.same(parseKeyFile('\n\n# only comments\n'), [])
})

t.test('verifies: an HMAC signed with any current key, and nothing else', async t => {
  const ring = new KeyRing(['first', 'second'])
  const message = 'immich-proxy-unlock:1700000000000'
  t.ok(ring.verifies(message, KeyRing.sign('second', message)))
  t.notOk(ring.verifies(message, KeyRing.sign('third', message)), 'another key\'s signature')
  t.notOk(ring.verifies(message + '1', KeyRing.sign('second', message)), 'another message')
  t.notOk(ring.verifies(message, KeyRing.sign('second', message).subarray(0, 16)), 'a truncated signature')
  t.notOk(ring.verifies(message, Buffer.alloc(0)), 'an empty signature')
})
