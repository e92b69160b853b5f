// A log consumer that stops reading (a container log driver under pressure, `immich-proxy > fifo`
// with a reader that went away) must not hold up the proxy: requests are still answered, a
// SIGTERM still ends the process within SHUTDOWN_TIMEOUT, and the lines that could not be kept
// are counted and reported once stdout is read again.
import t from 'tap'
import type { Readable } from 'node:stream'
import { request } from 'undici'
import type { Test } from 'tap'
import { spawnServer } from './helpers/ops.js'
import { waitFor, within } from './helpers/wait.js'
import { startUpstream } from './helper.js'

// An access line carries the path: 300 requests with 12 KiB paths log ~3.7 MB, more than the
// pipe (64 KiB), what this side reads before pausing, and the proxy's bounded buffer (1 MiB) hold.
const REQUESTS = 300
const PATH = '/api/assets/' + 'a'.repeat(12 * 1024)

interface Stalled {
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  kill: (signal: NodeJS.Signals) => void
  /** Starts reading stdout again; resolves with everything read so far and from then on. */
  resume: () => () => string
  url: string
}

/** The real server with stdout on a pipe this side stops reading once the proxy is listening. */
async function stalledServer (t: Test, upstream: string): Promise<Stalled> {
  const { child, output, exited, url } = await spawnServer(t, { UPSTREAM_URL: upstream, ADMIN_PORT: 'off', SHUTDOWN_TIMEOUT: '2s' })
  const stdout = child.stdout as Readable
  // paused: the line reader gets nothing more, this side reads nothing, and the pipe fills
  stdout.pause()
  return {
    exited,
    kill: signal => child.kill(signal),
    resume: () => {
      stdout.resume()
      return output
    },
    url
  }
}

async function requestsWhileStalled (t: Test, url: string): Promise<void> {
  const statuses = new Map<number, number>()
  for (let i = 0; i < REQUESTS; i++) {
    const response = await request(url + PATH, { headersTimeout: 10_000, bodyTimeout: 10_000 })
    await response.body.dump()
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
  }
  t.same(Object.fromEntries(statuses), { 200: REQUESTS }, `${REQUESTS} requests answered while nothing read stdout`)
}

t.test('stdout not read: requests are answered and SIGTERM ends the process within SHUTDOWN_TIMEOUT', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await stalledServer(t, upstream.url)
  await requestsWhileStalled(t, proxy.url)

  const signalled = Date.now()
  proxy.kill('SIGTERM')
  // SHUTDOWN_TIMEOUT is 2 s; the bound below only keeps a hang from holding the suite
  const exit = await within(proxy.exited, 15_000, 'the exit after SIGTERM with stdout stalled')
  t.comment(`exited ${Date.now() - signalled} ms after SIGTERM`)
  t.same(exit, { code: 0, signal: null }, 'a clean exit: the drain finished; the log lines left over were given up')
})

t.test('stdout read again: the dropped lines are counted in a line of their own, and logging goes on', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await stalledServer(t, upstream.url)
  await requestsWhileStalled(t, proxy.url)

  const read = proxy.resume()
  const dropped = (): Record<string, unknown> | undefined => read().split('\n').filter(line => line.includes('"droppedLines"'))
    .map(line => JSON.parse(line) as Record<string, unknown>)[0]
  // lines written after the pipe drained: the report, then this request's access line
  await waitFor(() => dropped() !== undefined, 10_000, 'the report of the dropped lines')
  const response = await request(proxy.url + '/api/server/ping')
  await response.body.dump()
  await waitFor(() => read().includes('"path":"/api/server/ping"'), 10_000, 'a new access line')

  const report = dropped()
  t.match(report, { level: 40, msg: 'log lines dropped: stdout did not keep up' })
  const count = Number(report?.droppedLines)
  const accessLines = read().split('\n').filter(line => line.includes(`"path":"${PATH}"`)).length
  t.ok(count > 0, `${count} lines dropped`)
  t.equal(accessLines + count, REQUESTS, `${accessLines} access lines written and ${count} dropped: every request is accounted for`)
  proxy.kill('SIGTERM')
  t.same(await within(proxy.exited, 15_000, 'the exit'), { code: 0, signal: null })
})
