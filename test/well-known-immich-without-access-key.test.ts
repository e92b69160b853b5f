// With ACCESS_KEY set, the discovery document still reaches Immich without the key: the mobile
// app and the CLI fetch GET /.well-known/immich to find the API before they send anything else.
// Only that path and those methods pass; a neighbouring path or spelling is refused as before.
import t from 'tap'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { statusWith } from './helpers/access-key.js'

const KEY = 'the-right-key'
const DISCOVERY = '{"api":{"endpoint":"/api"}}'

async function exchange (origin: string, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, type?: string, body: string }> {
  const client = new Client(origin)
  try {
    const response = await client.request({ method, path, headers })
    return { status: response.statusCode, type: response.headers['content-type'] as string | undefined, body: await response.body.text() }
  } finally {
    await client.close()
  }
}

t.test('GET and HEAD /.well-known/immich pass the gate without the key; neighbours do not', async t => {
  const immich = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : DISCOVERY)
  })
  const proxy = await startProxy(t, immich.url, { ACCESS_KEY: KEY })

  t.same(await exchange(proxy.url, 'GET', '/.well-known/immich'), { status: 200, type: 'application/json; charset=utf-8', body: DISCOVERY },
    "Immich's document, without a key")
  t.equal((await exchange(proxy.url, 'HEAD', '/.well-known/immich')).status, 200, 'HEAD')
  t.equal((await exchange(proxy.url, 'GET', '/.well-known/immich?v=2')).status, 200, 'with a query')
  t.equal((await exchange(proxy.url, 'GET', '/.well-known/immich', { accept: 'text/html' })).body, DISCOVERY, 'a browser gets the document, not the unlock page')
  t.same(immich.requests.map(req => `${req.method} ${req.url}`),
    ['GET /.well-known/immich', 'HEAD /.well-known/immich', 'GET /.well-known/immich?v=2', 'GET /.well-known/immich'])

  for (const [method, path] of [
    ['POST', '/.well-known/immich'],
    ['PUT', '/.well-known/immich'],
    ['GET', '/.well-known/other'],
    ['GET', '/.well-known/immich/x'],
    ['GET', '/.well-known/immich/'],
    ['GET', '/.well-known/immichx'],
    ['GET', '/.well-known/%69mmich'],
    ['GET', '//.well-known/immich'],
    ['GET', '/api/server/ping']
  ]) {
    t.equal((await exchange(proxy.url, method, path)).status, 403, `${method} ${path}`)
  }
  t.equal(immich.requests.length, 4, 'none of the neighbours reached Immich')
})

t.test('a key sent along is kept from Immich and not counted; a braked address still gets the document', async t => {
  const immich = await startUpstream(t, (req, res) => res.end(DISCOVERY))
  const proxy = await startProxy(t, immich.url, { ACCESS_KEY: KEY, ACCESS_KEY_MAX_FAILURES: '2' })

  t.equal((await exchange(proxy.url, 'GET', '/.well-known/immich', { 'x-access-key': 'wrong' })).status, 200)
  t.equal(immich.requests[0].headers['x-access-key'], undefined, 'Immich never sees the header')
  t.equal(await statusWith(proxy.url + '/', 'guess-1'), 403)
  t.equal(await statusWith(proxy.url + '/', KEY), 200, 'the wrong key on the document was not a guess')

  t.equal(await statusWith(proxy.url + '/', 'guess-2'), 403)
  t.equal(await statusWith(proxy.url + '/', KEY), 429, 'two guesses: braked')
  t.equal((await exchange(proxy.url, 'GET', '/.well-known/immich')).body, DISCOVERY, 'the document is outside the brake too')
})
