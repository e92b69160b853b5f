import t, { type Test } from 'tap'
import { ConfigError, parseConfig } from '../src/config.js'

/** The ConfigError lines parseConfig throws for `env`, or a failure if it does not throw. */
function problems (t: Test, env: Record<string, string>): string[] {
  try {
    parseConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split('\n')
    throw error
  }
  t.fail(`${JSON.stringify(env)} was accepted`)
  return []
}

t.test('defaults: the reference configs, with nothing set', async t => {
  t.same(parseConfig({}), {
    upstreams: ['http://immich-server:2283'],
    upstream: 'http://immich-server:2283',
    upstreamPolicy: 'least-connections',
    upstreamHealthInterval: 10_000,
    host: '0.0.0.0',
    port: 8080,
    tls: undefined,
    tlsClientCaFile: undefined,
    http2: true,
    hsts: 'max-age=31536000',
    httpPort: undefined,
    httpsRedirectPort: 443,
    bodyLimit: 50000 * 1024 * 1024,
    proxyTimeout: 600_000,
    maxConnections: undefined,
    upstreamMaxConnections: undefined,
    trustProxy: [],
    accessKeys: [],
    accessKeyFile: undefined,
    accessKeyMaxFailures: 10,
    accessKeyFailureWindow: 600_000,
    accessKeyCooldown: 900_000,
    accessKeyCookieMaxAge: 30 * 24 * 3600 * 1000,
    accessKeyAllowImmichCredentials: true,
    accessKeyAllowShareLinks: false,
    adminHost: '127.0.0.1',
    adminPort: 9090,
    shutdownTimeout: 30_000,
    loadShedEventLoopDelay: 1000,
    loadShedMemory: 0,
    logLevel: 'info'
  })
  t.same(parseConfig({ PORT: '', BODY_LIMIT: '  ', LOG_LEVEL: '' }), parseConfig({}), 'empty or blank means default (docker env files write VAR=)')
  t.same(parseConfig({ PATH: '/usr/bin', HOME: '/root', PORT: '9000' }).port, 9000, 'unrelated variables are ignored')
})

t.test('sizes in nginx syntax', async t => {
  const sizes: Array<[string, number]> = [
    ['50000M', 52_428_800_000],
    ['10m', 10_485_760],
    ['512k', 524_288],
    ['512K', 524_288],
    ['1g', 1_073_741_824],
    ['123', 123],
    ['0', 0],
    [' 10m ', 10_485_760]
  ]
  for (const [text, bytes] of sizes) t.equal(parseConfig({ BODY_LIMIT: text }).bodyLimit, bytes, text)
})

t.test('durations in nginx syntax', async t => {
  const durations: Array<[string, number]> = [
    ['600s', 600_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['500ms', 500],
    ['30', 30_000],
    ['1d', 86_400_000],
    ['0', 0]
  ]
  for (const [text, ms] of durations) t.equal(parseConfig({ PROXY_TIMEOUT: text }).proxyTimeout, ms, text)
})

t.test('accepted values are converted', async t => {
  const config = parseConfig({
    UPSTREAM_URL: 'https://immich.lan:2283/',
    HOST: '::',
    PORT: '443',
    TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,loopback,',
    ACCESS_KEY: 'key-one,key-two',
    LOG_LEVEL: 'warn'
  })
  t.equal(config.upstream, 'https://immich.lan:2283', 'the origin, trailing slash dropped')
  t.equal(config.host, '::')
  t.equal(config.port, 443)
  t.same(config.trustProxy, ['127.0.0.1', '10.0.0.0/8', 'loopback'])
  t.same(config.accessKeys, ['key-one', 'key-two'])
  t.equal(config.logLevel, 'warn')
})

t.test('each bad value is refused with one line: name, problem, example', async t => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ UPSTREAM_URL: 'http://immich-server:2283/immich' }, 'UPSTREAM_URL="http://immich-server:2283/immich" has a path, query or fragment; Immich is served on the root path only, e.g. UPSTREAM_URL=http://immich-server:2283'],
    [{ UPSTREAM_URL: 'http://immich-server:2283/?x=1' }, 'UPSTREAM_URL="http://immich-server:2283/?x=1" has a path, query or fragment; Immich is served on the root path only, e.g. UPSTREAM_URL=http://immich-server:2283'],
    [{ UPSTREAM_URL: 'http://immich-server:2283#top' }, 'UPSTREAM_URL="http://immich-server:2283#top" has a path, query or fragment; Immich is served on the root path only, e.g. UPSTREAM_URL=http://immich-server:2283'],
    [{ UPSTREAM_URL: 'immich-server:2283' }, 'UPSTREAM_URL="immich-server:2283" is not an http:// or https:// URL, or a comma-separated list of them, e.g. UPSTREAM_URL=http://immich-server:2283'],
    [{ UPSTREAM_URL: 'http://[::1' }, 'UPSTREAM_URL="http://[::1" is not a URL, e.g. UPSTREAM_URL=http://immich-server:2283'],
    [{ UPSTREAM_URL: 'http://admin:pw@immich-server:2283' }, 'UPSTREAM_URL="http://admin:pw@immich-server:2283" has a user name or password, which Immich does not take, e.g. UPSTREAM_URL=http://immich-server:2283'],
    [{ HOST: 'local host' }, 'HOST="local host" is not a host name or address, e.g. HOST=0.0.0.0'],
    [{ PORT: '0' }, 'PORT="0" is not a port number from 1 to 65535, e.g. PORT=8080'],
    [{ PORT: '65536' }, 'PORT="65536" is not a port number from 1 to 65535, e.g. PORT=8080'],
    [{ PORT: '80a' }, 'PORT="80a" is not a port number from 1 to 65535, e.g. PORT=8080'],
    [{ BODY_LIMIT: '12q' }, 'BODY_LIMIT="12q" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M'],
    [{ BODY_LIMIT: '1.5g' }, 'BODY_LIMIT="1.5g" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M'],
    [{ BODY_LIMIT: '-1' }, 'BODY_LIMIT="-1" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M'],
    [{ BODY_LIMIT: '99999999999g' }, 'BODY_LIMIT="99999999999g" is larger than any size this proxy can count, e.g. BODY_LIMIT=50000M'],
    [{ PROXY_TIMEOUT: '10 min' }, 'PROXY_TIMEOUT="10 min" is not a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds), e.g. PROXY_TIMEOUT=600s'],
    [{ PROXY_TIMEOUT: '30d' }, 'PROXY_TIMEOUT="30d" is longer than 24 days, the longest timeout Node keeps; 0 means no timeout, e.g. PROXY_TIMEOUT=600s'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY="10.0.0.0/33" is not a comma-separated list of addresses or CIDRs (invalid range on address: 10.0.0.0/33), e.g. TRUST_PROXY=10.0.0.0/8,loopback'],
    [{ TRUST_PROXY: '10.0.0.1,proxy.lan' }, 'TRUST_PROXY="10.0.0.1,proxy.lan" is not a comma-separated list of addresses or CIDRs (invalid IP address: proxy.lan), e.g. TRUST_PROXY=10.0.0.0/8,loopback'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL="verbose" is not a log level (fatal, error, warn, info, debug, trace, silent), e.g. LOG_LEVEL=info']
  ]
  for (const [env, line] of cases) t.same(problems(t, env), [line], JSON.stringify(env))
})

t.test('a bad ACCESS_KEY is refused without printing the keys', async t => {
  for (const value of [',s3cret', 's3cret,', 'one,,two', 'with space']) {
    t.same(problems(t, { ACCESS_KEY: value }), [
      'ACCESS_KEY is not a comma-separated list of keys without spaces or empty entries, e.g. ACCESS_KEY=s3cret-key-one,s3cret-key-two'
    ], 'an empty key would admit an empty X-Access-Key header')
  }
})

t.test('several bad values: one line each, in the order of the table', async t => {
  t.same(problems(t, { LOG_LEVEL: 'loud', BODY_LIMIT: '12q', UPSTREAM_URL: 'http://immich:2283/x', PORT: '0' }), [
    'UPSTREAM_URL="http://immich:2283/x" has a path, query or fragment; Immich is served on the root path only, e.g. UPSTREAM_URL=http://immich-server:2283',
    'PORT="0" is not a port number from 1 to 65535, e.g. PORT=8080',
    'BODY_LIMIT="12q" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M',
    'LOG_LEVEL="loud" is not a log level (fatal, error, warn, info, debug, trace, silent), e.g. LOG_LEVEL=info'
  ])
})
