// The access-key guard's refusals on /metrics, by reason: someone guessing keys shows up as
// `wrong`, then `brake` once the cool-down holds them off.
import t from 'tap'
import { startUpstream } from './helper.js'
import { statusWith } from './helpers/access-key.js'
import { metricsOf, sample, startListeners } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

t.test('refusals are counted by reason', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startListeners(t, upstream.url, { ACCESS_KEY: 'the-key', ACCESS_KEY_MAX_FAILURES: '2' })
  t.equal(await statusWith(proxy.url + '/', 'the-key'), 200)
  t.equal(await statusWith(proxy.url + '/'), 403)
  t.equal(await statusWith(proxy.url + '/', 'guess-1'), 403)
  t.equal(await statusWith(proxy.url + '/', 'guess-2'), 403)
  t.equal(await statusWith(proxy.url + '/', 'the-key'), 429)

  let metrics = ''
  await waitFor(async () => {
    metrics = await metricsOf(proxy.adminUrl)
    return sample(metrics, 'immich_proxy_requests_total', 'status_class="4xx"') === 4
  }, 5000, 'the refusals to be counted', { last: () => metrics })
  t.equal(sample(metrics, 'immich_proxy_access_key_refusals_total', 'reason="missing"'), 1)
  t.equal(sample(metrics, 'immich_proxy_access_key_refusals_total', 'reason="wrong"'), 2)
  t.equal(sample(metrics, 'immich_proxy_access_key_refusals_total', 'reason="brake"'), 1)
  t.equal(sample(metrics, 'immich_proxy_requests_total', 'status_class="2xx"'), 1)
  t.equal(upstream.requests.length, 1, 'only the admitted request reached Immich')
})
