// Child processes of the bench: each pinned to a core, each its own process group, all killed
// when the bench ends however it ends. Plus what /proc says about them (memory, CPU time).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { openSync, readFileSync, readdirSync, writeFileSync, closeSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'

const children = new Set<ChildProcess>()

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid as number), signal)
  } catch {
    // already gone
  }
}

const exitHooks: Array<() => void> = []

/** Runs `hook` (synchronous) when the bench exits, normally or by a signal. */
export function atExit (hook: () => void): void {
  exitHooks.push(hook)
}

function killAll (): void {
  for (const child of children) killGroup(child, 'SIGKILL')
  children.clear()
  for (const hook of exitHooks.splice(0)) hook()
}

process.once('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

export interface StartOptions {
  core: number
  env: Record<string, string>
  /** stdout and stderr go here (appended); /dev/null when unset. */
  logFile?: string
  cwd?: string
}

/** `taskset -c <core> command …`: taskset execs, so the child's pid is the command's own. */
export function startProcess (command: string, args: string[], options: StartOptions): ChildProcess {
  const out = openSync(options.logFile ?? '/dev/null', 'a')
  const child = spawn('taskset', ['-c', String(options.core), command, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    // its own group, so that nginx's workers go with their master
    detached: true,
    stdio: ['ignore', out, out]
  })
  closeSync(out)
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function exited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** SIGTERM (or `signal`) to the group, SIGKILL after `graceMs`. */
export async function stopProcess (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (exited(child)) return
  const done = once(child, 'exit')
  killGroup(child, signal)
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs)
  await done
  clearTimeout(timer)
  // nginx workers may outlive a killed master by a moment
  killGroup(child, 'SIGKILL')
}

/**
 * Raises this process's open-file limit to the hard limit (children inherit it; going past the
 * hard limit needs CAP_SYS_RESOURCE, which a container often lacks) and pins the process,
 * threads included. Returns the limit.
 */
export function prepareSelf (core: number): number {
  const hard = Number(execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--raw', '--noheadings', '--output=HARD'], { encoding: 'utf8' }).trim())
  const files = Number.isFinite(hard) ? hard : 1_048_576
  execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${files}:${files}`])
  execFileSync('taskset', ['-a', '-cp', String(core), String(process.pid)], { stdio: 'ignore' })
  return files
}

export function treePids (pid: number): number[] {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    let tasks: string[] = []
    try {
      tasks = readdirSync(`/proc/${pids[i]}/task`)
    } catch {
      continue
    }
    for (const task of tasks) {
      try {
        const kids = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim()
        if (kids !== '') pids.push(...kids.split(/\s+/).map(Number))
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return pids
}

function statusField (pid: number, field: string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

/** Resident memory of a process and its descendants, in bytes. */
export function treeRss (pid: number): number {
  return treePids(pid).reduce((sum, p) => sum + statusField(p, 'VmRSS'), 0)
}

/** Peak resident memory since the last resetPeak (sum of each process's peak), in bytes. */
export function treePeakRss (pid: number): number {
  return treePids(pid).reduce((sum, p) => sum + statusField(p, 'VmHWM'), 0)
}

/** Writing 5 to clear_refs sets VmHWM back to the current RSS (Linux ≥ 4.0). */
export function resetPeak (pid: number): void {
  for (const p of treePids(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5')
    } catch {
      // ended meanwhile
    }
  }
}

/** user + system CPU seconds of a process tree. */
export function treeCpuSeconds (pid: number): number {
  let ticks = 0
  for (const p of treePids(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // ended meanwhile
    }
  }
  return ticks / 100
}

/** Busy and total jiffies per core since boot, to see how loaded each core was over a run. */
export function coreTimes (): Array<{ busy: number, total: number }> {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter(line => /^cpu\d/.test(line)).map(line => {
    const values = line.split(/\s+/).slice(1).map(Number)
    const idle = values[3] + values[4]
    const total = values.slice(0, 8).reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  })
}

export function coreBusyPercent (before: ReturnType<typeof coreTimes>, after: ReturnType<typeof coreTimes>): number[] {
  return after.map((core, i) => 100 * (core.busy - before[i].busy) / Math.max(1, core.total - before[i].total))
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** One GET on a fresh connection; resolves with the status, rejects on a connection error. */
export async function getStatus (url: string, timeoutMs = 2000): Promise<number> {
  return await new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsRequest : httpRequest
    const req = get(url, { agent: false, rejectUnauthorized: false, timeout: timeoutMs }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/**
 * Milliseconds from `since` until `url` answers 200, trying every 5 ms. Throws after
 * `timeoutMs`, or at once if the process died.
 */
export async function waitForAnswer (url: string, since: number, child?: ChildProcess, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    try {
      if (await getStatus(url) === 200) return performance.now() - since
    } catch {
      // not listening yet
    }
    if (child !== undefined && exited(child)) throw new Error(`${url}: the process exited (${child.exitCode ?? child.signalCode ?? '?'}) before answering`)
    if (performance.now() - since > timeoutMs) throw new Error(`${url}: no 200 after ${timeoutMs} ms`)
    await sleep(5)
  }
}
