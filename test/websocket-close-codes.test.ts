import t from 'tap'
import type WebSocket from 'ws'
import { startProxy } from './helper.js'
import { closeOf, openClient, startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

// [code, reason] as sent; undefined = a close frame without a code, which the other side
// reports as 1005 (RFC 6455 §7.1.5) and a proxy that rewrites it would turn into 4005
const cases: Array<[number | undefined, string]> = [
  [1000, 'bye'],
  [4001, 'session expired'],
  [1001, ''],
  [undefined, '']
]

for (const direction of ['client to Immich', 'Immich to client'] as const) {
  t.test(`close codes pass unchanged, ${direction}`, async t => {
    const upstream = await startWsUpstream(t)
    const proxy = await startProxy(t, upstream.url)
    for (const [code, reason] of cases) {
      const [[upstreamSide], client] = await Promise.all([
        upstream.nextConnection(),
        openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`)
      ])
      const [closer, receiver]: WebSocket[] = direction === 'client to Immich' ? [client, upstreamSide] : [upstreamSide, client]
      const closes = Promise.all([closeOf(receiver), closeOf(closer)])
      if (code === undefined) closer.close()
      else closer.close(code, reason)
      const [received, echoed] = await within(closes, 5000, 'both close events')
      const expected = code ?? 1005
      t.same(received, { code: expected, reason }, `${code ?? 'no code'}: the other side gets ${expected}`)
      t.same(echoed, { code: expected, reason }, `${code ?? 'no code'}: the closing side gets the echo`)
    }
  })
}
