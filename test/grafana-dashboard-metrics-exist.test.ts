// deploy/grafana-dashboard.json queries only what /metrics exposes: every metric name in its
// PromQL is looked up on the real admin listener, after traffic that makes each family appear.
// A metric renamed or dropped in the code fails here, not as an empty panel on someone's screen.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { metricsOf, root, sample, startListeners, temporaryDirectory } from './helpers/ops.js'
import { startPebble } from './helpers/pebble.js'
import { waitFor } from './helpers/wait.js'
import { closedPort } from './helpers/websocket.js'

interface Target { expr: string }
interface Panel { id: number, type: string, title: string, datasource?: { type: string, uid: string }, gridPos: { w: number, x: number }, targets?: Array<Target & { datasource: { uid: string } }> }
interface Variable { name: string, type: string, query: string | { query: string }, datasource?: { uid: string } }
interface Dashboard { uid: string, title: string, schemaVersion: number, panels: Panel[], templating: { list: Variable[] } }

const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana-dashboard.json'), 'utf8')) as Dashboard

// PromQL words that are not metric names where they stand outside parentheses.
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

/** The metric names a PromQL expression (or Grafana's label_values(metric, label)) reads. */
function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range and subquery selectors
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\blabel_values\s*\(\s*([A-Za-z_:][\w:]*)\s*,[^)]*\)/g, '$1') // Grafana's variable query
    .replace(/\$\w+/g, '') // Grafana variables
  const names: string[] = []
  for (const match of bare.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const at = match.index
    if (/[\d.]/.test(bare[at - 1] ?? '')) continue // inside a number or a duration: 1e3, 5m
    if (bare.slice(at + match[0].length).trimStart().startsWith('(')) continue // a function
    if (KEYWORDS.has(match[0].toLowerCase())) continue
    names.push(match[0])
  }
  return names
}

/**
 * The family a sample name belongs to, from the exposition's `# TYPE` lines: the name itself, or,
 * for a histogram's `_bucket`, `_sum` and `_count` (a summary's `_sum` and `_count`), its base.
 */
function familyOf (name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name
  for (const [suffix, kinds] of [['_bucket', ['histogram']], ['_sum', ['histogram', 'summary']], ['_count', ['histogram', 'summary']]] as const) {
    const base = name.slice(0, -suffix.length)
    if (name.endsWith(suffix) && (kinds as readonly string[]).includes(types.get(base) ?? '')) return base
  }
  return undefined
}

t.test('the PromQL reader finds the metric names and nothing else', async t => {
  t.same(metricNames('histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y",i=~"$instance"}[$__rate_interval])))'), ['a_bucket'])
  t.same(metricNames('sum(rate(b_total{s="5xx"}[5m])) / on (instance) group_left c offset 1h > bool 1e3'), ['b_total', 'c'])
  t.same(metricNames('time() - max without (job) (d{e="f(g)"})'), ['d'])
  t.same(metricNames('label_values(e{f="g"}, instance)'), ['e'])
})

t.test('the dashboard is a Grafana 10+ dashboard on a Prometheus data source variable', async t => {
  t.equal(dashboard.uid, 'immich-proxy')
  t.ok(dashboard.schemaVersion >= 38, `schemaVersion ${dashboard.schemaVersion} (Grafana 10.0 writes 38)`)
  const source = dashboard.templating.list.find(variable => variable.type === 'datasource')
  t.equal(source?.query, 'prometheus', 'a data source variable limited to Prometheus')
  const uid = `\${${source?.name ?? ''}}`
  const ids = new Set<number>()
  for (const panel of dashboard.panels) {
    t.notOk(ids.has(panel.id), `panel id ${panel.id} is unique`)
    ids.add(panel.id)
    t.ok(panel.gridPos.x + panel.gridPos.w <= 24, `"${panel.title}" fits the 24 columns`)
    if (panel.type === 'row') continue
    t.equal(panel.datasource?.uid, uid, `"${panel.title}" reads the chosen data source`)
    t.ok((panel.targets ?? []).length > 0 && (panel.targets ?? []).every(target => target.datasource.uid === uid && target.expr !== ''), `"${panel.title}" has queries on it`)
  }
  for (const variable of dashboard.templating.list.filter(variable => variable.type === 'query')) {
    t.equal(variable.datasource?.uid, uid, `variable ${variable.name} reads the chosen data source`)
  }
})

t.test('every metric the dashboard queries is on /metrics, and every metric of the proxy is on the dashboard', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{}'))
  const proxy = await startListeners(t, upstream.url, { ACCESS_KEY: 'k' })
  // an answered request (status classes, Immich's response time) and a refusal (by reason)
  for (const headers of [{ 'x-access-key': 'k' }, {}]) {
    const response = await request(`${proxy.url}/api/server/ping`, { headers })
    await response.body.dump()
  }
  let metrics = ''
  await waitFor(async () => {
    metrics = await metricsOf(proxy.adminUrl)
    return sample(metrics, 'immich_proxy_access_key_refusals_total', 'reason="missing"') === 1 &&
    sample(metrics, 'immich_proxy_requests_total', 'status_class="2xx"') === 1
  }, 5000, 'both requests to be counted', { last: () => metrics })
  // a proxy with ACME_DOMAINS whose order fails (pebble validates where nothing listens): the
  // served certificate's expiry and the order's result
  const pebble = await startPebble(t, { tlsPort: await closedPort(), httpPort: await closedPort() })
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  const acme = await startListeners(t, upstream.url, { ACME_DOMAINS: 'photos.example.test', ACME_DIRECTORY: pebble.directory, ACME_CA_FILE: pebble.caFile, ACME_STORAGE: storage })
  let acmeMetrics = ''
  await waitFor(async () => {
    acmeMetrics = await metricsOf(acme.adminUrl)
    return sample(acmeMetrics, 'immich_proxy_acme_orders_total', 'result="failed"') === 1
  }, 20_000,
  'the failed order to be counted', { intervalMs: 200, last: () => acmeMetrics.split('\n').filter(line => line.startsWith('immich_proxy_')).join('\n') })
  metrics += acmeMetrics
  // a proxy in front of two Immich servers: their state and requests
  const second = await startUpstream(t, (req, res) => res.end('{}'))
  const balanced = await startListeners(t, `${upstream.url},${second.url}`)
  for (let i = 0; i < 2; i++) await (await request(`${balanced.url}/api/server/ping`)).body.dump()
  metrics += await metricsOf(balanced.adminUrl)
  const types = new Map([...metrics.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name, type]))

  const queries: Array<{ where: string, expr: string }> = [
    ...dashboard.panels.flatMap(panel => (panel.targets ?? []).map(target => ({ where: `panel "${panel.title}"`, expr: target.expr }))),
    ...dashboard.templating.list.filter(variable => variable.type === 'query')
      .map(variable => ({ where: `variable ${variable.name}`, expr: typeof variable.query === 'string' ? variable.query : variable.query.query }))
  ]
  const queried = new Set<string>()
  for (const { where, expr } of queries) {
    const names = metricNames(expr)
    t.ok(names.length > 0, `${where} reads a metric: ${expr}`)
    for (const name of names) {
      const family = familyOf(name, types)
      t.ok(family !== undefined, `${name} (${where}) is a metric family on /metrics`)
      t.match(metrics, new RegExp(`^${name}[{ ]`, 'm'), `${name} (${where}) has a sample`)
      if (family !== undefined) queried.add(family)
    }
  }
  const own = [...types.keys()].filter(name => name.startsWith('immich_proxy_'))
  t.ok(own.length >= 7, `the proxy's own families: ${own.join(', ')}`)
  for (const family of own) t.ok(queried.has(family), `${family} is on the dashboard`)
})
