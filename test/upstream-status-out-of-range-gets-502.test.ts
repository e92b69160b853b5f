import t, { type Test } from 'tap'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { rawExchange } from './helper.js'
import { logged, spawnServer } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

// An upstream that answers every request with the status line its path asks for
// (`/status/600` → `HTTP/1.1 600 X`), and 200 to anything else: node:http would refuse to write
// such a status, so the answer is written as bytes.
async function startOddUpstream (t: Test): Promise<string> {
  const server = createServer((socket: Socket) => {
    let head = ''
    socket.on('error', () => {})
    socket.on('data', chunk => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      const status = /^GET \/[^ ]*?status\/([0-9]+)/.exec(head)?.[1] ?? (head.includes('/.well-known/immich') ? '600' : '200')
      socket.end(`HTTP/1.1 ${status} X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok`)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('an upstream status outside 100-599 gets 502 and the process keeps serving', async t => {
  const upstream = await startOddUpstream(t)
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream })
  let exited = false
  proxy.exited.then(() => { exited = true }, () => {})

  const alive = async (what: string): Promise<void> => {
    const ok = await rawExchange(proxy.port, 'GET /api/server/ping HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
    t.match(ok, /^HTTP\/1\.1 200 /, `${what}: the next request is answered`)
    t.notOk(exited, `${what}: the process is still running`)
  }

  for (const status of ['600', '700', '999']) {
    const answer = await rawExchange(proxy.port, `GET /api/status/${status} HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 502 /, `HTTP proxy, ${status}: 502`)
    t.match(answer, /"error":"Bad Gateway"/, `HTTP proxy, ${status}: the JSON body of the other upstream failures`)
    await alive(`HTTP proxy, ${status}`)
  }

  const wellKnown = await rawExchange(proxy.port, 'GET /.well-known/immich HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
  t.match(wellKnown, /^HTTP\/1\.1 502 /, 'well-known route, 600: 502')
  await alive('well-known route')

  const upgrade = await rawExchange(proxy.port, [
    'GET /api/socket.io/status/600 HTTP/1.1', 'Host: immich.test', 'Connection: Upgrade', 'Upgrade: websocket',
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''
  ].join('\r\n'))
  t.match(upgrade, /^HTTP\/1\.1 502 /, 'WebSocket upgrade answered 600: 502')
  await alive('WebSocket tunnel')

  // log lines reach stdout in batches
  await waitFor(() => logged(proxy.lines, 'upstream request failed').length === 5, 5000, 'five log lines')
  t.match(logged(proxy.lines, 'upstream request failed')[0], { level: 40, err: { code: 'IMMICH_PROXY_UNRELAYABLE_ANSWER' } }, 'each one is logged, with the status')
})
