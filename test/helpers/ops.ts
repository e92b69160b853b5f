// Operating the proxy as an operator does: the listeners of src/run.ts in this process, the real
// entry point in a process of its own (its stdout read as the JSON lines `docker logs` shows),
// the admin endpoints, Prometheus text, and uploads paced over seconds.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, rmdirSync, statSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import type { Test } from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config.js'
import { run, type Running } from '../../src/run.js'
import { root } from './root.js'
import { START_ENTRY, START_FLAGS } from './start-flags.js'
import { waitFor } from './wait.js'
import { closedPort } from './websocket.js'

export { root }

/**
 * The server as `npm start`, the container and the bin run it: the bundle (scripts/bundle.mjs,
 * by its absolute path) with the start script's flags, built first if the sources are newer.
 */
export async function serverCommand (): Promise<string[]> {
  await ensureBuilt()
  return [process.execPath, ...START_FLAGS, join(root, START_ENTRY)]
}

let emptyDirectory: string | undefined
/**
 * The working directory of the servers tests start: an empty one of this test process, so that
 * a developer's own .env in the repository (which `npm start` reads) never reaches a test.
 */
export function serverDirectory (): string {
  if (emptyDirectory === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-cwd-'))
    // mkdtemp makes it 0700: a server the test runs as another user (test/root-only) must be able
    // to look for its .env there, as the image's node user can in /app
    chmodSync(dir, 0o755)
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    emptyDirectory = dir
  }
  return emptyDirectory
}

/** A new folder under the system's temporary one, named `<prefix>XXXXXX`, removed when `t` ends. */
export function temporaryDirectory (t: Pick<Test, 'teardown'>, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface Listeners {
  running: Running
  /** http://127.0.0.1:<PORT> */
  url: string
  port: number
  /** http://127.0.0.1:<ADMIN_PORT> */
  adminUrl: string
  adminPort: number
}

/**
 * Every listener of src/run.ts, configured from literal environment values on free loopback
 * ports, closed when the test ends.
 */
export async function startListeners (t: Test, upstream: string, env: Record<string, string> = {}): Promise<Listeners> {
  // a port found free can be taken by a parallel test before we listen on it: run() then closes
  // what it opened, and we try again on new ports
  for (let attempt = 1; ; attempt++) {
    const port = await closedPort()
    const adminPort = await closedPort()
    const config = parseConfig({ UPSTREAM_URL: upstream, HOST: '127.0.0.1', PORT: String(port), ADMIN_PORT: String(adminPort), LOG_LEVEL: 'silent', ...env })
    let running: Running
    try {
      running = await run(config)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 3 && env.PORT === undefined && env.ADMIN_PORT === undefined) continue
      throw error
    }
    t.teardown(async () => await running.close())
    return { running, url: `http://127.0.0.1:${port}`, port, adminUrl: `http://127.0.0.1:${adminPort}`, adminPort }
  }
}

/** One stdout line of the proxy: a pino record, or `{ text }` for a line that is not JSON. */
export type LogLine = Record<string, unknown>

/** A child process whose stdout is read as log lines. */
export interface LoggedProcess {
  child: ChildProcess
  /** stdout lines so far, parsed (a line that is not JSON as `{ text }`). */
  lines: LogLine[]
  /** Everything written to stdout and stderr so far. */
  output: () => string
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface ServerProcess extends LoggedProcess {
  port: number
  /** undefined with ADMIN_PORT=off */
  adminPort: number | undefined
  url: string
  /** '' with ADMIN_PORT=off */
  adminUrl: string
}

function exitOf (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
}

export interface ServerOptions {
  /** The whole command, when it is not the bundle: the image's CMD through its entrypoint. */
  command?: string[]
  /**
   * Runs the command under another: a `ulimit` in `sh -c`, `script` for a terminal.
   */
  wrap?: (command: string[]) => string[]
  /** Arguments after the command: --help, --healthcheck. */
  args?: string[]
  /** The working directory: an empty one unless given (one with a .env, the repository root). */
  cwd?: string
  /**
   * 'listening' (the default): resolves once the main and admin listeners are up and the
   * start-up summary is logged, rejecting if the process exits first. 'spawned': at once, for a
   * test that reads the start itself (a log that is not JSON lines).
   */
  until?: 'listening' | 'spawned'
  /** 'pipe' for a command that needs a stdin (`script`). */
  stdin?: 'ignore' | 'pipe'
}

async function commandOf (options: ServerOptions): Promise<string[]> {
  const command = [...options.command ?? await serverCommand(), ...options.args ?? []]
  return options.wrap === undefined ? command : options.wrap(command)
}

/**
 * Runs the server (by default the bundle, as `npm start` runs it) in its own process with exactly
 * `env` (plus PATH to find node; PORT and ADMIN_PORT get free loopback ports unless given,
 * ADMIN_PORT may be 'off'; HOST defaults to 127.0.0.1), its stdout read as log lines; killed
 * when the test ends if still running. See ServerOptions for the command and when it resolves.
 */
export async function spawnServer (t: Test, env: Record<string, string>, options: ServerOptions = {}): Promise<ServerProcess> {
  const command = await commandOf(options)
  const port = Number(env.PORT ?? await closedPort())
  const admin = env.ADMIN_PORT ?? String(await closedPort())
  const adminPort = admin === 'off' ? undefined : Number(admin)
  const spawned = spawnLogged(t, command, options.cwd ?? serverDirectory(), { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: String(port), ADMIN_PORT: admin }, options.stdin)
  const { lines, output, exited } = spawned
  const running = { ...spawned, port, adminPort, url: `http://127.0.0.1:${port}`, adminUrl: adminPort === undefined ? '' : `http://127.0.0.1:${adminPort}` }
  if (options.until === 'spawned') return running

  const listening = (p: number | undefined): boolean => p === undefined || lines.some(line => line.msg === `Server listening at http://127.0.0.1:${p}` || line.msg === `Server listening at https://127.0.0.1:${p}`)
  let gone = false
  exited.then(() => { gone = true }, () => {})
  // the summary line (src/startup-summary.ts) comes once every listener is up, after the warnings
  const started = (): boolean => lines.some(line => typeof line.msg === 'string' && line.msg.startsWith('immich-proxy started: '))
  await waitFor(() => gone || (listening(port) && listening(adminPort) && started()), 30_000, `the proxy to listen on ${port} and ${admin}`, { last: output })
  if (gone) throw new Error(`the proxy exited before listening:\n${output()}`)
  return running
}

export interface ServerExit { code: number | null, stdout: string, stderr: string }

/**
 * Runs the server (as spawnServer does; `options.until` aside) with exactly `env` plus PATH and
 * a free ADMIN_PORT unless given, never the ambient environment, until it exits, within 30 s:
 * for start-up errors and the CLI flags, what an operator sees in `docker logs`. HOST and PORT
 * are left to the test, which may be testing how they are read (.env, their defaults).
 */
export async function runServer (env: Record<string, string>, options: Omit<ServerOptions, 'until' | 'stdin'> = {}): Promise<ServerExit> {
  const command = await commandOf(options)
  // a server that gets as far as listening must not take the default 9090 from another suite
  const adminPort = String(await closedPort())
  return await new Promise(resolve => {
    const child = execFile(command[0], command.slice(1), {
      cwd: options.cwd ?? serverDirectory(),
      env: { PATH: process.env.PATH ?? '', ADMIN_PORT: adminPort, ...env },
      timeout: 30_000
    }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
  })
}

/**
 * Runs `command` in `cwd` with exactly `env`, its stdout read as log lines; killed when the test
 * ends if still running. `stdin: 'pipe'` for a command that needs one (`script`).
 */
export function spawnLogged (t: Test, command: string[], cwd: string, env: Record<string, string>, stdin: 'ignore' | 'pipe' = 'ignore'): LoggedProcess {
  const child = spawn(command[0], command.slice(1), { cwd, env, stdio: [stdin, 'pipe', 'pipe'] })
  const stdout = child.stdout as Readable
  const stderr = child.stderr as Readable
  const exited = exitOf(child)
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await exited
  })
  const lines: LogLine[] = []
  let output = ''
  createInterface({ input: stdout }).on('line', line => {
    output += line + '\n'
    try {
      lines.push(JSON.parse(line) as LogLine)
    } catch {
      lines.push({ text: line })
    }
  })
  stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  return { child, lines, output: () => output, exited }
}

/** The pino records with this message. */
export function logged (lines: LogLine[], msg: string): LogLine[] {
  return lines.filter(line => line.msg === msg)
}

/** Status and parsed JSON body of a GET. */
export async function getJson (url: string): Promise<{ status: number, body: unknown }> {
  const response = await request(url)
  const text = await response.body.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: response.statusCode, body }
}

/** The value of one sample in Prometheus text, e.g. sample(text, 'x_total', 'status_class="2xx"'). */
export function sample (metrics: string, name: string, labels = ''): number | undefined {
  const key = labels === '' ? name : `${name}{${labels}}`
  for (const line of metrics.split('\n')) {
    if (line.startsWith(key + ' ')) return Number(line.slice(key.length + 1))
  }
  return undefined
}

export async function metricsOf (adminUrl: string): Promise<string> {
  const response = await request(adminUrl + '/metrics')
  if (response.statusCode !== 200) throw new Error(`/metrics answered ${response.statusCode}`)
  return await response.body.text()
}

export interface PacedUpload {
  /** Bytes written to the socket so far. */
  sent: () => number
  /** The response, or the error that ended the upload. */
  done: Promise<{ status?: number, body: string, error?: Error }>
}

/**
 * POSTs `total` bytes with a Content-Length, in `chunks` equal pieces `everyMs` apart, on a
 * connection of its own.
 */
export function pacedUpload (port: number, path: string, total: number, chunks: number, everyMs: number): PacedUpload {
  const piece = Math.ceil(total / chunks)
  let sent = 0
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path,
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': total }
  })
  const done = new Promise<{ status?: number, body: string, error?: Error }>(resolve => {
    let timer: NodeJS.Timeout | undefined
    req.on('error', error => {
      clearTimeout(timer)
      resolve({ body: '', error })
    })
    req.on('response', res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body }))
      res.on('error', error => resolve({ status: res.statusCode, body, error }))
    })
    const next = (): void => {
      const size = Math.min(piece, total - sent)
      sent += size
      if (sent >= total) {
        req.end(Buffer.alloc(size, 'u'))
        return
      }
      req.write(Buffer.alloc(size, 'u'))
      timer = setTimeout(next, everyMs)
    }
    next()
  })
  return { sent: () => sent, done }
}

/**
 * Keeps this process's event loop busy for `ms`, in slices of `sliceMs` with a turn of the loop
 * between them (so sockets and timers still run, late): every turn sees a delay of about
 * `sliceMs`, as under real overload. For the load-shedding tests, which build the proxy in
 * this same process.
 */
export async function overload (ms: number, sliceMs = 100): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const sliceEnd = Math.min(end, Date.now() + sliceMs)
    while (Date.now() < sliceEnd) { /* busy: the point is to hold the event loop */ }
    await new Promise(resolve => setImmediate(resolve))
  }
}

function mtime (path: string): number {
  try {
    return statSync(path).mtimeMs
  } catch {
    return -1
  }
}

/**
 * `npm run build` (the Dockerfile's build step) when dist/ is missing or older than the sources,
 * by the rule `npm start` follows (scripts/build-if-stale.mjs), once at a time across test
 * processes (a directory as the lock). Rejects with tsc's output if the build fails, as
 * `docker build` would.
 */
export async function ensureBuilt (): Promise<void> {
  const lock = join(tmpdir(), `immich-proxy-build-${createHash('sha1').update(root).digest('hex').slice(0, 12)}.lock`)
  // A build is given 170 s (below), so a lock older than 200 s was left by a test process that
  // died mid-build and is cleared; waiting longer than that can only mean something is wrong.
  const deadline = Date.now() + 260_000
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const since = mtime(lock)
      // -1: released meanwhile, taken at the next try
      if (since !== -1 && Date.now() - since > 200_000) rmSync(lock, { recursive: true, force: true })
      if (Date.now() > deadline) throw new Error(`the build lock ${lock} was held for over 4 minutes`)
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: root, timeout: 170_000 }, (error, stdout, stderr) => {
        if (error === null) resolve()
        else reject(new Error(`npm run build failed:\n${stdout}${stderr}`))
      })
    })
  } finally {
    rmdirSync(lock)
  }
}
