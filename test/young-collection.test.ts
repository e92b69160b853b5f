// npm test: own process (it counts from the first byte this process forwards)
import t from 'tap'
import { forwarded, NUDGE_BYTES } from '../plugins/forwarding/young-collection.js'
import { exposeGc, recordCollections } from './helpers/gc.js'

// The count behind the young-generation collections (plugins/forwarding/young-collection.ts): one
// collection per NUDGE_BYTES forwarded, whatever the chunk sizes, and none without gc() exposed.
t.test('one young-generation collection per NUDGE_BYTES forwarded', async t => {
  const calls = recordCollections(t)

  // a fresh count (this process forwarded nothing before): chunks that do not divide NUDGE_BYTES
  const chunk = 65_536 + 7
  let sent = 0
  while (sent + chunk <= 5 * NUDGE_BYTES) { forwarded(chunk); sent += chunk }
  t.equal(calls.length, Math.floor(sent / NUDGE_BYTES), `${sent} bytes in ${chunk}-byte chunks`)
  t.same(calls[0], { type: 'minor' }, 'a young-generation collection, not a full one')

  // the overshoot carried over: the next collection comes when the total reaches 5 x NUDGE_BYTES
  forwarded(5 * NUDGE_BYTES - sent - 1)
  t.equal(calls.length, 4, 'not one byte early')
  forwarded(1)
  t.equal(calls.length, 5, 'nor one byte late')

  exposeGc(t, undefined)
  forwarded(2 * NUDGE_BYTES)
  t.equal(calls.length, 5, 'without gc() exposed nothing is called and nothing throws')
})
