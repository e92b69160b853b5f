// The real entry point with a bad environment: what an operator sees in `docker logs`.
import t from 'tap'
import { runServer } from './helpers/ops.js'

const serverWith = runServer

t.test('a bad BODY_LIMIT stops the process with exit code 1 and one line', async t => {
  const exit = await serverWith({ BODY_LIMIT: '12q' })
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '', 'nothing was started or logged')
  t.equal(exit.stderr, 'immich-proxy: BODY_LIMIT="12q" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M\n')
})

t.test('an UPSTREAM_URL with a path stops the process the same way', async t => {
  const exit = await serverWith({ UPSTREAM_URL: 'http://immich-server:2283/photos', PORT: '8080' })
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '')
  t.equal(exit.stderr, 'immich-proxy: UPSTREAM_URL="http://immich-server:2283/photos" has a path, query or fragment; Immich is served on the root path only, e.g. UPSTREAM_URL=http://immich-server:2283\n')
})

t.test('several bad settings: one line each, every line with the prefix', async t => {
  const exit = await serverWith({ BODY_LIMIT: '12q', PORT: '0', ACCESS_KEY: 'a, b' })
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '')
  t.equal(exit.stderr, [
    'immich-proxy: PORT="0" is not a port number from 1 to 65535, e.g. PORT=8080',
    'immich-proxy: BODY_LIMIT="12q" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M',
    'immich-proxy: ACCESS_KEY is not a comma-separated list of keys without spaces or empty entries, e.g. ACCESS_KEY=s3cret-key-one,s3cret-key-two',
    ''
  ].join('\n'), 'in the order of the settings; the key itself not shown')
})
