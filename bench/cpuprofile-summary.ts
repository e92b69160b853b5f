// Where a V8 .cpuprofile spends its time: self time by area (package or our own folder), by
// file and by function, as a share of the busy (non-idle) time.
//
//   npx tsx bench/cpuprofile-summary.ts /tmp/prof/CPU.….cpuprofile [top]
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number }
export interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

const REPO_URL = new URL('..', import.meta.url).href

/** node_modules/@fastify/reply-from/… → @fastify/reply-from; our files → src/…, plugins/… */
function fileOf (frame: CallFrame): string {
  // V8 builtins and C++ bindings have no URL: name them, writeString (fs, the log) and writev
  // (sockets) are not the same cost
  if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : `(native ${frame.functionName === '' ? 'anonymous' : frame.functionName})`
  let url = frame.url.startsWith(REPO_URL) ? frame.url.slice(REPO_URL.length) : frame.url
  url = url.replace(/^dist\//, '')
  return url
}

function areaOf (file: string): string {
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)
  if (modules !== null) return modules[1]
  if (file.startsWith('node:')) return file.startsWith('node:internal/') ? `node:${file.split('/')[1]}` : file
  if (/^(src|plugins)\//.test(file)) return `immich-proxy ${file.split('/')[0]}/`
  return file
}

function rows (totals: Map<string, number>, busy: number, top: number): string[] {
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => `| ${(100 * us / busy).toFixed(1)} % | ${(us / 1000).toFixed(0)} | ${name} |`)
}

export function summarise (profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const self = new Map<number, number>()
  // timeDeltas[i] is the time between sample i-1 and sample i; it is charged to sample i-1
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + delta)
  }
  const byArea = new Map<string, number>()
  const byFile = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  let idle = 0
  for (const [id, us] of self) {
    const frame = (byId.get(id) as ProfileNode).callFrame
    total += us
    if (frame.functionName === '(idle)') {
      idle += us
      continue
    }
    const file = fileOf(frame)
    const add = (map: Map<string, number>, key: string): void => { map.set(key, (map.get(key) ?? 0) + us) }
    add(byArea, areaOf(file))
    add(byFile, file)
    add(byFunction, frame.url === '' ? file : `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${file}:${frame.lineNumber + 1}`)
  }
  const busy = total - idle
  const header = (what: string): string[] => [`| self | ms | ${what} |`, '|---:|---:|---|']
  return [
    `${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (${(100 * busy / total).toFixed(0)} %); shares are of the busy time.`,
    '',
    '**By area** (package, Node internals, our folders)', '', ...header('area'), ...rows(byArea, busy, top), '',
    '**By file**', '', ...header('file'), ...rows(byFile, busy, top), '',
    '**By function**', '', ...header('function'), ...rows(byFunction, busy, top), ''
  ].join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) throw new Error('usage: tsx bench/cpuprofile-summary.ts <file.cpuprofile> [top]')
  process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(process.argv[3] ?? 25)))
}
