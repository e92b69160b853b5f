import t from 'tap'
import { once } from 'node:events'
import WebSocket from 'ws'
import { startProxy } from './helper.js'
import { startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const SOCKETS = 1000

t.test(`${SOCKETS} concurrent WebSockets all open and all echo`, async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const clients: WebSocket[] = []
  t.teardown(() => { for (const client of clients) client.terminate() })

  const opened = Array.from({ length: SOCKETS }, async (_, i) => {
    const client = new WebSocket(`ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket&n=${i}`)
    clients.push(client)
    await once(client, 'open')
    return client
  })
  await within(Promise.all(opened), 30_000, `${SOCKETS} sockets to open`)
  t.equal(upstream.wss.clients.size, SOCKETS, 'all are open at the same time, end to end')

  const echoed = await within(Promise.all(clients.map(async (client, i) => {
    const reply = once(client, 'message')
    client.send(`socket ${i}`)
    return String((await reply)[0])
  })), 20_000, 'every echo')
  t.equal(echoed.filter((message, i) => message === `socket ${i}`).length, SOCKETS, 'each got its own message back')

  for (const client of clients) client.close(1000)
  await waitFor(() => upstream.sockets.size === 0, 20_000, 'every upstream connection to close')
  t.equal(upstream.wss.clients.size, 0)
})
