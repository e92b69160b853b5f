// bench/RESULTS.md: the figures (median of the rounds, ± half the range), their ratios to nginx
// with the reference config, of @fastify/http-proxy to immich-proxy and to direct, the TLS pair,
// the diagnostics and the machine.

export interface Figure {
  key: string
  label: string
  unit: string
  higherIsBetter: boolean
  /** the figure shown in the direct column instead (added latency: direct's own latency) */
  direct?: string
  /** shown only in the diagnostics table */
  diagnostic?: boolean
}

/** figure key → target name → one value per round */
export type Samples = Map<string, Map<string, number[]>>

export interface ReportInput {
  figures: Figure[]
  samples: Samples
  targets: string[]
  notes: string[]
  machine: Record<string, string>
  run: Record<string, string>
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** 13 800, 235, 17.7, 1.52, 0.214: about three significant digits, thousands spaced. */
export function formatNumber (value: number): string {
  const size = Math.abs(value)
  if (size >= 1000) return Math.round(value).toLocaleString('en-US').replace(/,/g, ' ')
  if (size >= 100) return value.toFixed(0)
  if (size >= 10) return value.toFixed(1)
  if (size >= 1) return value.toFixed(2)
  return value.toFixed(3)
}

function cell (values: number[] | undefined): string {
  if (values === undefined || values.length === 0) return '—'
  const m = median(values)
  if (values.length === 1) return formatNumber(m)
  const low = Math.min(...values)
  const high = Math.max(...values)
  if (low > 0) return `${formatNumber(m)} ±${(50 * (high - low) / m).toFixed(0)}%`
  return `${formatNumber(m)} (${formatNumber(low)}…${formatNumber(high)})`
}

function ratio (values: number[] | undefined, reference: number[] | undefined): string {
  if (values === undefined || reference === undefined || values.length === 0 || reference.length === 0) return '—'
  const r = median(values) / median(reference)
  return Number.isFinite(r) && median(reference) > 0 ? `${r.toFixed(2)}×` : '—'
}

/**
 * Ratio per round, median (lowest…highest): the targets take turns within a round, so a ratio
 * taken round by round leaves out the machine's drift between rounds. Ratio of medians when the
 * rounds do not pair up (a figure failed in one of them).
 */
function roundRatio (values: number[] | undefined, reference: number[] | undefined): string {
  if (values === undefined || reference === undefined || values.length < 2 || values.length !== reference.length || reference.some(r => r <= 0)) return ratio(values, reference)
  const ratios = values.map((v, i) => v / reference[i])
  return `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}…${Math.max(...ratios).toFixed(2)})`
}

function table (header: string[], rows: string[][], align = '---:'): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => i === 0 ? '---' : align).join('|')}|`,
    ...rows.map(row => `| ${row.join(' | ')} |`)
  ].join('\n')
}

export function formatReport ({ figures, samples, targets, notes, machine, run }: ReportInput): string {
  const get = (key: string, target: string): number[] | undefined => samples.get(key)?.get(target)
  const has = (figure: Figure, names: string[]): boolean => names.some(name => (get(figure.key, name)?.length ?? 0) > 0)
  const valuesFor = (figure: Figure, target: string): number[] | undefined =>
    target === 'direct' && figure.direct !== undefined ? get(figure.direct, target) : get(figure.key, target)

  const plain = targets.filter(t => !t.endsWith('-tls'))
  const tls = targets.filter(t => t.endsWith('-tls'))
  const main = figures.filter(f => f.diagnostic !== true && has(f, plain.filter(t => t !== 'direct').concat(f.direct === undefined ? ['direct'] : [])))
  const out: string[] = []

  out.push('# Benchmark results', '')
  out.push('Produced by `npm run bench` (bench/run.ts). Each proxy pinned to core 0 with one worker; wrk,',
    'the other clients and the upstream (bench/upstream.mjs, Node) on core 1; loopback only. Every',
    'figure is the median of the rounds (targets measured in turn within each round), ± half the',
    'range between rounds. MB = 10^6 bytes, kB = 10^3. Ratios are of medians; for latency and',
    'memory, lower is better, so a ratio under 1 is the good side.', '')
  out.push(table(['run', ''], Object.entries(run).map(([k, v]) => [k, v]), '---'), '')
  out.push(table(['machine', ''], Object.entries(machine).map(([k, v]) => [k, v]), '---'), '')

  out.push('## Plain HTTP', '')
  out.push(table(['figure', ...plain], main.map(f => [f.label, ...plain.map(t => cell(valuesFor(f, t)))])), '')

  if (plain.includes('nginx')) {
    out.push('## Ratios to nginx (Immich docs\' reference config)', '')
    const others = plain.filter(t => t !== 'nginx')
    out.push(table(['figure', ...others], main.map(f => [f.label, ...others.map(t => t === 'direct' && f.direct !== undefined ? '—' : ratio(valuesFor(f, t), get(f.key, 'nginx')))])), '')
  }
  const fastifyProxies = plain.filter(t => t.startsWith('fastify-http-proxy'))
  if (plain.includes('immich-proxy') && fastifyProxies.length > 0) {
    out.push('## Ratios of @fastify/http-proxy to immich-proxy', '')
    out.push('Per round, median (lowest…highest of the rounds).', '')
    out.push(table(['figure', ...fastifyProxies], main.map(f => [f.label, ...fastifyProxies.map(t => roundRatio(get(f.key, t), get(f.key, 'immich-proxy')))])), '')
  }
  if (plain.includes('direct')) {
    out.push('## Ratios to direct (no proxy)', '')
    const others = plain.filter(t => t !== 'direct')
    const rows = main.filter(f => f.direct === undefined && has(f, ['direct']))
    out.push(table(['figure', ...others], rows.map(f => [f.label, ...others.map(t => ratio(get(f.key, t), get(f.key, 'direct')))])), '')
  }

  if (tls.length > 0) {
    const rows = figures.filter(f => f.diagnostic !== true && has(f, tls))
    const pair = tls.includes('immich-proxy-tls') && tls.includes('nginx-tls')
    out.push('## HTTPS (same certificate, ECDSA P-256; HTTP/1.1, as wrk and Node clients offer no ALPN)', '')
    out.push(table(['figure', ...tls, ...(pair ? ['immich-proxy-tls ÷ nginx-tls'] : [])],
      rows.map(f => [f.label, ...tls.map(t => cell(get(f.key, t))), ...(pair ? [ratio(get(f.key, 'immich-proxy-tls'), get(f.key, 'nginx-tls'))] : [])])), '')
  }

  const diagnostics = figures.filter(f => f.diagnostic === true && has(f, targets))
  if (diagnostics.length > 0) {
    out.push('## Diagnostics', '')
    out.push('Proxy CPU near 100 % means the proxy is the bottleneck; the load core near 100 % means wrk and',
      'the upstream are (then the figure understates the proxy). A core busier than what the bench',
      'runs on it (proxy core busy − proxy CPU) was shared with other work on the machine.', '')
    out.push(table(['figure', ...targets], diagnostics.map(f => [f.label, ...targets.map(t => cell(get(f.key, t)))])), '')
  }

  out.push('## Notes', '')
  out.push(...(notes.length === 0 ? ['None: every request of every figure was answered 200.'] : notes.map(n => `- ${n}`)), '')

  out.push('<details><summary>Raw samples, one per round</summary>', '', '```')
  for (const [key, byTarget] of samples) {
    for (const [target, values] of byTarget) out.push(`${key} ${target}: ${values.map(formatNumber).join(', ')}`)
  }
  out.push('```', '', '</details>', '')
  return out.join('\n')
}
