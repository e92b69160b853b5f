// A real Redis server (Debian's redis-server, installed by npm test's pretest) on a free loopback
// port, with nothing kept on disk; it can be stopped and started again on the same port.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { Test } from 'tap'
import { closedPort } from './websocket.js'
import { waitFor } from './wait.js'

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
  start: () => Promise<void>
}

/** Whether something on `port` answers PING with PONG. */
async function pong (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.setTimeout(1000, () => { socket.destroy(); resolve(false) })
    socket.on('error', () => resolve(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', chunk => {
      answer += chunk.toString()
      if (answer.includes('\r\n')) {
        socket.destroy()
        resolve(answer.startsWith('+PONG'))
      }
    })
  })
}

export async function startRedis (t: Test): Promise<RedisServer> {
  const port = await closedPort()
  let child: ChildProcess | undefined
  let output = ''
  async function start (): Promise<void> {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await waitFor(async () => await pong(port), 10_000, `redis-server on ${port}`, { intervalMs: 50, last: () => output })
  }
  async function stop (): Promise<void> {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    running.kill('SIGKILL')
    await once(running, 'exit')
  }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, stop, start }
}
