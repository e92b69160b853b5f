// With TLS and HTTP_PORT, the plain-HTTP listener only redirects to HTTPS (and proxies
// /.well-known/immich). It must never offer the unlock form: a key typed there would cross the
// network in clear text, and its cookie could not be Secure. Browsers are sent to HTTPS, where
// the form is. The discovery document needs no key there either; other spellings the router
// takes for its route stay guarded.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { buildRedirectServer } from '../src/build.js'
import { parseConfig } from '../src/config.js'
import { startUpstream } from './helper.js'
import { postUnlock } from './helpers/access-key.js'

t.test('the plain listener redirects browsers to HTTPS instead of showing the form, and never takes the key', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"api":{"endpoint":"/api"}}'))
  const config = parseConfig({ UPSTREAM_URL: upstream.url, LOG_LEVEL: 'silent', TLS_SELF_SIGNED: 'true', HTTP_PORT: '8080', ACCESS_KEY: 'k' })
  const server = await buildRedirectServer(config)
  if (server === undefined) throw new Error('no redirect listener')
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`

  const page = await request(url + '/photos?album=1', { headers: { accept: 'text/html', host: 'immich.example' } })
  t.equal(page.statusCode, 308, 'a browser is sent to HTTPS')
  t.equal(page.headers.location, 'https://immich.example/photos?album=1')
  t.notMatch(await page.body.text(), /<form/, 'no form over plain HTTP')

  const unlock = await postUnlock(url, { key: 'k', next: '/' })
  t.equal(unlock.setCookie, undefined, 'no cookie is issued over plain HTTP')
  t.not(unlock.status, 303)

  const wellKnown = await request(url + '/.well-known/immich')
  t.equal(wellKnown.statusCode, 200, 'the discovery document, without a key')
  t.equal(await wellKnown.body.text(), '{"api":{"endpoint":"/api"}}')
  const encoded = await request(url + '/.well-known/%69mmich')
  t.equal(encoded.statusCode, 403, 'another spelling of its route stays guarded')
  await encoded.body.dump()
  const withKey = await request(url + '/.well-known/%69mmich', { headers: { 'x-access-key': 'k' } })
  t.equal(withKey.statusCode, 200)
  await withKey.body.dump()
  t.same(upstream.requests.map(req => req.url), ['/.well-known/immich', '/.well-known/%69mmich'])
})
