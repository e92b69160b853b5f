import t from 'tap'
import { ConfigError, parseConfig } from '../src/config.js'

function problems (env: Record<string, string>): string[] {
  try {
    parseConfig(env)
    return []
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split('\n')
    throw error
  }
}

t.test('both PEM files turn HTTPS on, on port 8443 unless PORT says otherwise', async t => {
  const config = parseConfig({ TLS_CERT_FILE: '/certs/fullchain.pem', TLS_KEY_FILE: '/certs/privkey.pem' })
  t.same(config.tls, { certFile: '/certs/fullchain.pem', keyFile: '/certs/privkey.pem', selfSigned: false })
  t.equal(config.port, 8443)
  t.equal(parseConfig({ TLS_SELF_SIGNED: 'true', PORT: '443' }).port, 443)
  t.same(parseConfig({ TLS_SELF_SIGNED: 'true' }).tls, { certFile: '', keyFile: '', selfSigned: true })
})

t.test('one PEM file without the other names the missing variable', async t => {
  t.same(problems({ TLS_CERT_FILE: '/certs/fullchain.pem' }), [
    'TLS_KEY_FILE="" is empty while TLS_CERT_FILE is set; HTTPS needs both files, e.g. TLS_KEY_FILE=/etc/letsencrypt/live/immich.example.org/privkey.pem'
  ])
  t.same(problems({ TLS_KEY_FILE: '/certs/privkey.pem' }), [
    'TLS_CERT_FILE="" is empty while TLS_KEY_FILE is set; HTTPS needs both files, e.g. TLS_CERT_FILE=/etc/letsencrypt/live/immich.example.org/fullchain.pem'
  ])
})

t.test('self-signed and files together, HTTP_PORT without TLS or on the HTTPS port are refused', async t => {
  t.match(problems({ TLS_SELF_SIGNED: 'true', TLS_CERT_FILE: '/a', TLS_KEY_FILE: '/b' }), [/^TLS_SELF_SIGNED="true" is set together with TLS_CERT_FILE\/TLS_KEY_FILE; choose one/])
  t.match(problems({ HTTP_PORT: '8080' }), [/^HTTP_PORT="8080" is set without TLS/])
  t.match(problems({ TLS_SELF_SIGNED: 'true', HTTP_PORT: '8443' }), [/^HTTP_PORT="8443" is the same port as the HTTPS listener/])
  t.match(problems({ TLS_SELF_SIGNED: 'yes' }), [/^TLS_SELF_SIGNED="yes" is not true or false, e.g. TLS_SELF_SIGNED=true$/])
  t.match(problems({ HSTS: 'max-age=abc' }), [/^HSTS="max-age=abc" is not off or a Strict-Transport-Security value/])
})

t.test('HSTS, HTTP/2 and redirect settings', async t => {
  const config = parseConfig({ TLS_SELF_SIGNED: 'true', HSTS: 'off', HTTP2: 'false', HTTP_PORT: '8080', HTTPS_REDIRECT_PORT: '8443' })
  t.equal(config.hsts, false)
  t.equal(config.http2, false)
  t.equal(config.httpPort, 8080)
  t.equal(config.httpsRedirectPort, 8443)
  t.equal(parseConfig({ HSTS: 'max-age=63072000; includeSubDomains; preload' }).hsts, 'max-age=63072000; includeSubDomains; preload')
})

t.test('access key brake and cookie settings', async t => {
  const config = parseConfig({ ACCESS_KEY_FILE: '/run/secrets/keys', ACCESS_KEY_MAX_FAILURES: '0', ACCESS_KEY_FAILURE_WINDOW: '1m', ACCESS_KEY_COOLDOWN: '1h', ACCESS_KEY_COOKIE_MAX_AGE: '0' })
  t.equal(config.accessKeyFile, '/run/secrets/keys')
  t.equal(config.accessKeyMaxFailures, 0)
  t.equal(config.accessKeyFailureWindow, 60_000)
  t.equal(config.accessKeyCooldown, 3_600_000)
  t.equal(config.accessKeyCookieMaxAge, 0)
  t.match(problems({ ACCESS_KEY_MAX_FAILURES: 'ten' }), [/^ACCESS_KEY_MAX_FAILURES="ten" is not a whole number/])
})

t.test('ACME_DOMAINS turns HTTPS on with certificates from an ACME CA', async t => {
  const config = parseConfig({ ACME_DOMAINS: 'Photos.Example.org, immich.example.org,photos.example.org' })
  t.equal(config.port, 8443, 'HTTPS port')
  t.ok(config.tls !== undefined, 'TLS is on')
  t.same(config.acme, {
    domains: ['photos.example.org', 'immich.example.org'],
    email: undefined,
    directory: 'https://acme-v02.api.letsencrypt.org/directory',
    caFile: undefined,
    storage: './acme',
    challenge: 'tls-alpn-01'
  }, 'names lower-cased and once each; Let\'s Encrypt production; tls-alpn-01 without HTTP_PORT')
  t.equal(parseConfig({ ACME_DOMAINS: 'a.example.org', HTTP_PORT: '8080' }).acme?.challenge, 'http-01', 'http-01 with HTTP_PORT')
  t.equal(parseConfig({ ACME_DOMAINS: 'a.example.org', HTTP_PORT: '8080', ACME_CHALLENGE: 'tls-alpn-01' }).acme?.challenge, 'tls-alpn-01')
  const dns = parseConfig({ ACME_DOMAINS: 'a.example.org,*.a.example.org', HTTP_PORT: '8080', ACME_DNS_HOOK: '/usr/local/bin/hook' }).acme
  t.same([dns?.challenge, dns?.dnsHook, dns?.domains], ['dns-01', '/usr/local/bin/hook', ['a.example.org', '*.a.example.org']], 'dns-01 with ACME_DNS_HOOK, even with HTTP_PORT; wildcards then allowed')
  t.same(parseConfig({ ACME_DOMAINS: 'a.example.org', ACME_EAB_KID: 'kid-1', ACME_EAB_HMAC_KEY: 'abc_-' }).acme?.externalAccountBinding, { kid: 'kid-1', hmacKey: 'abc_-' }, 'an external account binding')
  t.equal(parseConfig({ ACME_DOMAINS: 'a.example.org', ACME_DIRECTORY: 'letsencrypt-staging' }).acme?.directory,
    'https://acme-staging-v02.api.letsencrypt.org/directory')
  t.equal(parseConfig({ ACME_DOMAINS: 'a.example.org', ACME_DIRECTORY: 'https://ca.example.org/dir' }).acme?.directory, 'https://ca.example.org/dir')
  t.equal(parseConfig({ ACME_DIRECTORY: 'letsencrypt-staging' }).acme, undefined, 'the other ACME settings alone turn nothing on')
  t.equal(parseConfig({ ACME_DOMAINS: 'a.example.org', HTTP_PORT: '8080' }).httpPort, 8080, 'HTTP_PORT is allowed: ACME is TLS')
})

t.test('ACME settings that cannot work are refused, naming the settings', async t => {
  t.match(problems({ ACME_DOMAINS: 'a.example.org', TLS_CERT_FILE: '/a', TLS_KEY_FILE: '/b' }),
    [/^ACME_DOMAINS="a.example.org" is set together with TLS_CERT_FILE\/TLS_KEY_FILE; choose one way to get the certificate/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org', TLS_SELF_SIGNED: 'true' }), [/^ACME_DOMAINS="a.example.org" is set together with TLS_SELF_SIGNED/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org', ACME_CHALLENGE: 'http-01' }), [/^ACME_CHALLENGE="http-01" needs HTTP_PORT/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org', ACME_CHALLENGE: 'dns-1' }), [/^ACME_CHALLENGE="dns-1" is not http-01, tls-alpn-01 or dns-01/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org', ACME_CHALLENGE: 'dns-01' }), [/^ACME_CHALLENGE="dns-01" needs ACME_DNS_HOOK/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org', ACME_CHALLENGE: 'tls-alpn-01', ACME_DNS_HOOK: '/hook' }), [/^ACME_DNS_HOOK="\/hook" is set while ACME_CHALLENGE=tls-alpn-01; the hook serves dns-01 only/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org,*.example.org' }), [/^ACME_DOMAINS="a.example.org,\*.example.org" names \*.example.org: a CA checks a wildcard by dns-01 only, so set ACME_DNS_HOOK/])
  t.match(problems({ ACME_DOMAINS: 'a.*.example.org' }), [/is not a comma-separated list of domain names/], 'a wildcard only as the first label')
  const secret = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajV'
  const eab = problems({ ACME_DOMAINS: 'a.example.org', ACME_EAB_HMAC_KEY: secret })
  t.match(eab, [/^ACME_EAB_KID="" is empty while ACME_EAB_HMAC_KEY is set; an external account binding needs both/])
  t.match(problems({ ACME_DOMAINS: 'a.example.org', ACME_EAB_KID: 'kid-1' }), [/^ACME_EAB_HMAC_KEY is empty while ACME_EAB_KID is set/])
  const badKey = problems({ ACME_DOMAINS: 'a.example.org', ACME_EAB_KID: 'kid-1', ACME_EAB_HMAC_KEY: `${secret}/+` })
  t.match(badKey, [/^ACME_EAB_HMAC_KEY is not a base64url key/])
  t.notOk([...eab, ...badKey].some(line => line.includes(secret)), 'the HMAC key is never in a message')
  t.match(problems({ ACME_DOMAINS: 'localhost' }), [/^ACME_DOMAINS="localhost" is not a comma-separated list of domain names/])
  t.match(problems({ ACME_DIRECTORY: 'http://ca.example.org/dir' }), [/^ACME_DIRECTORY="http:\/\/ca.example.org\/dir" is not letsencrypt, letsencrypt-staging or an https:\/\/ URL/])
  t.match(problems({ ACME_EMAIL: 'not an address' }), [/^ACME_EMAIL="not an address" is not an e-mail address/])
})
