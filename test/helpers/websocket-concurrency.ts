// Many WebSockets open through one proxy at once, each echoing its own message, and all closed
// end to end after. The suite opens 200 (test/websocket-concurrency.test.ts), `npm run soak` 1 000.
import type { Test } from 'tap'
import { once } from 'node:events'
import WebSocket from 'ws'
import { startProxy } from '../helper.js'
import { startWsUpstream } from './websocket.js'
import { waitFor, within } from './wait.js'

export async function concurrentWebSockets (t: Test, sockets: number): Promise<void> {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const clients: WebSocket[] = []
  t.teardown(() => { for (const client of clients) client.terminate() })

  const opened = Array.from({ length: sockets }, async (_, i) => {
    const client = new WebSocket(`ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket&n=${i}`)
    clients.push(client)
    await once(client, 'open')
    return client
  })
  await within(Promise.all(opened), 30_000, `${sockets} sockets to open`)
  t.equal(upstream.wss.clients.size, sockets, 'all are open at the same time, end to end')

  const echoed = await within(Promise.all(clients.map(async (client, i) => {
    const reply = once(client, 'message')
    client.send(`socket ${i}`)
    return String((await reply)[0])
  })), 20_000, 'every echo')
  t.equal(echoed.filter((message, i) => message === `socket ${i}`).length, sockets, 'each got its own message back')

  for (const client of clients) client.close(1000)
  await waitFor(() => upstream.sockets.size === 0, 20_000, 'every upstream connection to close')
  t.equal(upstream.wss.clients.size, 0)
}
