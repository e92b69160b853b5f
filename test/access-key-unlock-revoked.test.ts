// Revoking a key (deleting its line from ACCESS_KEY_FILE) also locks out every browser that
// unlocked with it: the cookie is an HMAC under the key, checked against the keys in force.
import t from 'tap'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { keyFile, postUnlock } from './helpers/access-key.js'
import { waitFor } from './helpers/wait.js'

async function statusWithCookie (url: string, cookie: string): Promise<number> {
  const response = await request(url, { headers: { cookie } })
  await response.body.dump()
  return response.statusCode
}

t.test('removing a key from the key file invalidates the cookies issued for it, and only those', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, 'grandma-key\ncousin-key\n')
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'env-key', ACCESS_KEY_FILE: file.path })
  const url = proxy.url + '/api/timeline/buckets'
  const grandma = (await postUnlock(proxy.url, { key: 'grandma-key', next: '/' })).cookie as string
  const cousin = (await postUnlock(proxy.url, { key: 'cousin-key', next: '/' })).cookie as string
  const owner = (await postUnlock(proxy.url, { key: 'env-key', next: '/' })).cookie as string
  for (const cookie of [grandma, cousin, owner]) t.equal(await statusWithCookie(url, cookie), 200)

  file.write('grandma-key\n')
  await waitFor(async () => await statusWithCookie(url, cousin) === 403, 10_000, 'the cousin\'s cookie to be refused', { intervalMs: 100 })
  t.equal(await statusWithCookie(url, grandma), 200, 'a cookie of a key still in the file works')
  t.equal(await statusWithCookie(url, owner), 200, 'a cookie of an ACCESS_KEY key works')
  // refused cookies are not guesses (forging one means breaking HMAC-SHA256): no brake
  for (let i = 0; i < 15; i++) t.equal(await statusWithCookie(url, cousin), 403)
  t.equal(await statusWithCookie(url, grandma), 200, 'fifteen refused cookies started no brake')
})
