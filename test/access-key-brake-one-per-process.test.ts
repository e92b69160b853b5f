// One brake per process: the HTTPS listener and the plain-HTTP listener on HTTP_PORT count wrong
// keys together, so a second listener does not give a guesser a second allowance. On HTTP_PORT
// the guard covers the proxied well-known route; its exact path is open (the discovery document),
// so the guesses there use a spelling the router also takes for it.
import t from 'tap'
import { Agent, request } from 'undici'
import { startUpstream } from './helper.js'
import { closedPort } from './helpers/websocket.js'
import { startListeners } from './helpers/ops.js'

const KEY = 'the-right-key'

t.test('guesses on the main listener and on HTTP_PORT add up to one ACCESS_KEY_MAX_FAILURES', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"api":{"endpoint":"/api"}}'))
  const httpPort = await closedPort()
  const listeners = await startListeners(t, upstream.url, {
    ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '4', TLS_SELF_SIGNED: 'true', HTTP_PORT: String(httpPort)
  })
  const tls = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(() => tls.close())
  const main = async (key: string): Promise<number> => {
    const response = await request(`https://127.0.0.1:${listeners.port}/api/server/ping`, { headers: { 'x-access-key': key }, dispatcher: tls })
    await response.body.dump()
    return response.statusCode
  }
  const plain = async (key: string): Promise<number> => {
    const response = await request(`http://127.0.0.1:${httpPort}/.well-known/%69mmich`, { headers: { 'x-access-key': key } })
    await response.body.dump()
    return response.statusCode
  }

  t.equal(await plain(KEY), 200, 'HTTP_PORT proxies the well-known route with the key')
  t.equal(await plain('guess-1'), 403)
  t.equal(await plain('guess-2'), 403)
  t.equal(await main('guess-3'), 403)
  t.equal(await main('guess-4'), 403, 'the fourth guess, two on each listener')
  t.equal(await main(KEY), 429, 'the main listener is braked')
  t.equal(await plain(KEY), 429, 'and so is HTTP_PORT')
})
