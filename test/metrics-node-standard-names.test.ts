// Node's process metrics on /metrics carry prom-client's standard names (process_*, nodejs_*),
// the ones stock Node.js dashboards and alerts query; only the proxy's own are immich_proxy_*.
import t from 'tap'
import { startUpstream } from './helper.js'
import { metricsOf, startListeners } from './helpers/ops.js'

t.test('process and Node.js metrics keep their standard names', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{}'))
  const proxy = await startListeners(t, upstream.url)
  const metrics = await metricsOf(proxy.adminUrl)
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'process_start_time_seconds',
    'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_version_info', 'nodejs_gc_duration_seconds']) {
    t.match(metrics, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
  const families = [...metrics.matchAll(/^# TYPE (\S+) /gm)].map(([, name]) => name)
  t.same(families.filter(name => !/^(process_|nodejs_|immich_proxy_)/.test(name)), [], 'no family outside the three prefixes')
  t.same(families.filter(name => /^immich_proxy_(process|nodejs)_/.test(name)), [], 'none renamed under the proxy\'s prefix')
})
