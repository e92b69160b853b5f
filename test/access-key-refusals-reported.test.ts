// Every refusal is reported on the `immich-proxy:access-key-refused` diagnostics channel with
// its reason, for the metrics: missing (no key, a browser not yet unlocked), wrong (a guess, by
// header or form) and brake (a 429 during the cool-down). Admitted requests report nothing.
import t from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { startProxy, startUpstream } from './helper.js'
import { postUnlock, statusWith } from './helpers/access-key.js'

t.test('missing, wrong and brake are reported, one message per refusal', async t => {
  const reasons: string[] = []
  const onRefused = (message: unknown): void => { reasons.push((message as { reason: string }).reason) }
  subscribe('immich-proxy:access-key-refused', onRefused)
  t.teardown(() => unsubscribe('immich-proxy:access-key-refused', onRefused))

  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_MAX_FAILURES: '2' })
  t.equal(await statusWith(proxy.url + '/', 'k'), 200)
  t.equal(await statusWith(proxy.url + '/'), 403)
  t.equal(await statusWith(proxy.url + '/', 'guess'), 403)
  t.equal((await postUnlock(proxy.url, { key: 'guess', next: '/' })).status, 403)
  t.equal(await statusWith(proxy.url + '/', 'k'), 429)
  t.equal((await postUnlock(proxy.url, { key: 'k', next: '/' })).status, 429)
  t.same(reasons, ['missing', 'wrong', 'wrong', 'brake', 'brake'])
})
