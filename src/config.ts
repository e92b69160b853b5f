// Every setting is an environment variable, validated here. The schema is the single source of
// truth: its defaults, descriptions, hints and examples also feed the error messages.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import proxyAddr from '@fastify/proxy-addr'
import { SETTING_DEFAULTS, DEFAULTS, UPSTREAM_POLICIES } from '../plugins/defaults.js'
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './nginx-units.js'
import type { AcmeChallengeType } from '../plugins/tls/acme.js'

const BOOLEAN_PATTERN = '^(true|false)$'

// ACME_DIRECTORY's short names
const ACME_DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory'
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

// Node keeps timers as a signed 32-bit count of milliseconds and cuts longer ones to 24.8 days,
// with only a warning.
const LONGEST_TIMER = 2 ** 31 - 1

// `hint` completes "is not …" in an error message; `secret` keeps the value out of it.
export const EnvSchema = Type.Object({
  UPSTREAM_URL: Type.String({
    default: SETTING_DEFAULTS.UPSTREAM_URL,
    pattern: '^ *https?://[^\\s,]+ *(, *https?://[^\\s,]+ *)*$',
    description: 'the Immich server, an http(s) URL without a path (Immich is served on the root path only); several, comma-separated, share the requests (UPSTREAM_POLICY) among those answering (UPSTREAM_HEALTH_INTERVAL)',
    hint: 'an http:// or https:// URL, or a comma-separated list of them',
    examples: ['http://immich-server:2283']
  }),
  HOST: Type.String({
    default: SETTING_DEFAULTS.HOST,
    pattern: '^\\S+$',
    description: 'address the main listener binds to',
    hint: 'a host name or address',
    examples: ['0.0.0.0']
  }),
  PORT: Type.String({
    default: SETTING_DEFAULTS.PORT,
    pattern: '^[0-9]{1,5}$',
    description: 'port of the main listener (1-65535); default 8080, or 8443 when TLS is on',
    hint: 'a port number from 1 to 65535',
    examples: ['8080']
  }),
  TLS_CERT_FILE: Type.String({
    default: SETTING_DEFAULTS.TLS_CERT_FILE,
    description: 'PEM certificate chain (e.g. Let\'s Encrypt fullchain.pem); with TLS_KEY_FILE, the main listener speaks HTTPS. Reloaded when the file changes',
    hint: 'a file path',
    examples: ['/etc/letsencrypt/live/immich.example.org/fullchain.pem']
  }),
  TLS_KEY_FILE: Type.String({
    default: SETTING_DEFAULTS.TLS_KEY_FILE,
    description: 'PEM private key of TLS_CERT_FILE (e.g. privkey.pem)',
    hint: 'a file path',
    examples: ['/etc/letsencrypt/live/immich.example.org/privkey.pem']
  }),
  TLS_SELF_SIGNED: Type.String({
    default: SETTING_DEFAULTS.TLS_SELF_SIGNED,
    pattern: BOOLEAN_PATTERN,
    description: 'true: HTTPS with a certificate generated at start, for first tries on a LAN (browsers warn)',
    hint: 'true or false',
    examples: ['true']
  }),
  TLS_CLIENT_CA_FILE: Type.String({
    default: SETTING_DEFAULTS.TLS_CLIENT_CA_FILE,
    description: 'with TLS: PEM of the CA(s) that sign users\' client certificates (mTLS, which the Immich mobile app supports); a client presenting a valid one passes the access gate. Without ACCESS_KEY, a valid client certificate (or an Immich credential, see ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS) is required on the HTTPS listener. Reloaded when the file changes',
    hint: 'a file path',
    examples: ['/certs/clients-ca.pem']
  }),
  ACME_DOMAINS: Type.String({
    default: SETTING_DEFAULTS.ACME_DOMAINS,
    pattern: '^((\\*\\.)?[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+( *, *(\\*\\.)?[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+)*)?$',
    description: 'comma-separated domain names: the main listener speaks HTTPS with a certificate the proxy obtains from an ACME CA (Let\'s Encrypt by default) and stores in ACME_STORAGE; until it has one, a temporary self-signed one. A wildcard (*.example.org) needs dns-01. Setting it agrees to the CA\'s terms of service',
    hint: 'a comma-separated list of domain names',
    examples: ['photos.example.org']
  }),
  ACME_EMAIL: Type.String({
    default: SETTING_DEFAULTS.ACME_EMAIL,
    pattern: '^([^@\\s]+@[^@\\s]+)?$',
    description: 'with ACME_DOMAINS: the contact address of the ACME account (the CA\'s expiry warnings)',
    hint: 'an e-mail address',
    examples: ['admin@example.org']
  }),
  ACME_DIRECTORY: Type.String({
    default: SETTING_DEFAULTS.ACME_DIRECTORY,
    pattern: '^(letsencrypt|letsencrypt-staging|https://\\S+)$',
    description: 'with ACME_DOMAINS: the CA\'s ACME directory, an https:// URL, or letsencrypt (production) or letsencrypt-staging (untrusted certificates, generous rate limits, for trials)',
    hint: 'letsencrypt, letsencrypt-staging or an https:// URL',
    examples: ['letsencrypt-staging']
  }),
  ACME_CA_FILE: Type.String({
    default: SETTING_DEFAULTS.ACME_CA_FILE,
    description: 'with ACME_DOMAINS: PEM of an extra CA to trust when talking to the ACME server (a private CA, a test server such as pebble); the system\'s CAs stay trusted',
    hint: 'a file path',
    examples: ['/certs/acme-server-ca.pem']
  }),
  ACME_STORAGE: Type.String({
    default: SETTING_DEFAULTS.ACME_STORAGE,
    pattern: '^\\S+$',
    description: 'with ACME_DOMAINS: the folder of the ACME account key and of the certificates and their keys (files 0600, written whole or not at all); keep it across restarts (a volume): a stored certificate that is still good is served at start, not ordered again',
    hint: 'a folder path',
    examples: ['/data/acme']
  }),
  ACME_CHALLENGE: Type.String({
    default: SETTING_DEFAULTS.ACME_CHALLENGE,
    pattern: '^(http-01|tls-alpn-01|dns-01)?$',
    description: 'with ACME_DOMAINS: how the CA checks the names: http-01 (answered on the HTTP_PORT listener, which the CA reaches on port 80), tls-alpn-01 (answered on the HTTPS listener itself, which the CA reaches on port 443) or dns-01 (a TXT record set through ACME_DNS_HOOK; for hosts the CA cannot reach, and wildcards). Empty: dns-01 when ACME_DNS_HOOK is set, else http-01 when HTTP_PORT is set, else tls-alpn-01',
    hint: 'http-01, tls-alpn-01 or dns-01',
    examples: ['tls-alpn-01']
  }),
  ACME_DNS_HOOK: Type.String({
    default: SETTING_DEFAULTS.ACME_DNS_HOOK,
    description: 'with dns-01: an executable the proxy runs as `<hook> set <domain> <record name> <value>` before the CA checks, and `<hook> clear <domain> <record name> <value>` after; exit 0 once the TXT record is in place (or gone). Any DNS provider with a CLI or an API, without providers built in',
    hint: 'a path to an executable',
    examples: ['/usr/local/bin/acme-dns-hook']
  }),
  ACME_EAB_KID: Type.String({
    default: SETTING_DEFAULTS.ACME_EAB_KID,
    description: 'with ACME_DOMAINS: the key identifier of an external account binding, for CAs that require one (ZeroSSL, Google Trust Services, private CAs); with ACME_EAB_HMAC_KEY',
    hint: 'the key identifier the CA gave',
    examples: ['kid-1']
  }),
  ACME_EAB_HMAC_KEY: Type.String({
    default: SETTING_DEFAULTS.ACME_EAB_HMAC_KEY,
    pattern: '^[A-Za-z0-9_=-]*$',
    description: 'with ACME_EAB_KID: the HMAC key of the external account binding, base64url as the CA gives it (never logged)',
    hint: 'a base64url key',
    secret: true,
    examples: ['the-key-your-CA-gave-you']
  }),
  ACME_PROFILE: Type.String({
    default: SETTING_DEFAULTS.ACME_PROFILE,
    pattern: '^[A-Za-z0-9._-]*$',
    description: 'with ACME_DOMAINS: a certificate profile the CA offers (Let\'s Encrypt: classic, tlsserver, or shortlived for 6-day certificates, renewed after 4), asked for only if the CA\'s directory lists it; otherwise a warning at start and the CA\'s default',
    hint: 'a profile name',
    examples: ['shortlived']
  }),
  HTTP2: Type.String({
    default: SETTING_DEFAULTS.HTTP2,
    pattern: BOOLEAN_PATTERN,
    description: 'offer HTTP/2 (with HTTP/1.1 fallback) on the HTTPS listener',
    hint: 'true or false',
    examples: ['false']
  }),
  HSTS: Type.String({
    default: SETTING_DEFAULTS.HSTS,
    pattern: '^(off|max-age=[0-9]+( *; *includeSubDomains)?( *; *preload)?)$',
    description: 'Strict-Transport-Security sent on HTTPS responses; off sends none',
    hint: 'off or a Strict-Transport-Security value',
    examples: ['max-age=31536000']
  }),
  HTTP_PORT: Type.String({
    default: SETTING_DEFAULTS.HTTP_PORT,
    pattern: '^[0-9]{1,5}$',
    description: 'with TLS: a plain-HTTP listener on this port that redirects to HTTPS (308) and serves /.well-known/immich; empty: none',
    hint: 'a port number from 1 to 65535',
    examples: ['8080']
  }),
  HTTPS_REDIRECT_PORT: Type.String({
    default: SETTING_DEFAULTS.HTTPS_REDIRECT_PORT,
    pattern: '^[0-9]{1,5}$',
    description: 'the HTTPS port clients reach (the published one), used in redirects from HTTP_PORT',
    hint: 'a port number from 1 to 65535',
    examples: ['443']
  }),
  BODY_LIMIT: Type.String({
    default: SETTING_DEFAULTS.BODY_LIMIT,
    pattern: SIZE_PATTERN,
    description: 'largest request body, nginx size syntax (k, m, g); 0 means no limit. Mirrors client_max_body_size 50000M',
    hint: 'a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit)',
    examples: ['50000M']
  }),
  PROXY_TIMEOUT: Type.String({
    default: SETTING_DEFAULTS.PROXY_TIMEOUT,
    pattern: DURATION_PATTERN,
    description: 'how long the upstream or the client may stay silent, nginx time syntax (ms, s, m, h, d). Mirrors proxy_read_timeout/proxy_send_timeout/send_timeout 600s',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['600s']
  }),
  MAX_CONNECTIONS: Type.String({
    default: SETTING_DEFAULTS.MAX_CONNECTIONS,
    pattern: '^[0-9]*$',
    description: 'most client connections open at once on each proxied listener; past it a new connection is closed at once. Empty: derived from the process\'s file-descriptor limit (half of it, less 64 kept for files and listeners, split between the listeners when HTTP_PORT is set); 0: no limit',
    hint: 'a whole number (0 = no limit), or empty to derive it from the file-descriptor limit',
    examples: ['4096']
  }),
  UPSTREAM_MAX_CONNECTIONS: Type.String({
    default: SETTING_DEFAULTS.UPSTREAM_MAX_CONNECTIONS,
    pattern: '^[1-9][0-9]*$',
    description: 'most connections to Immich at once for proxied HTTP requests (WebSocket tunnels are counted by MAX_CONNECTIONS; /.well-known/immich has at most 16 of its own per listener); past it requests wait for a free one for up to PROXY_TIMEOUT, then get 503. Empty: 1024, or the half of the file-descriptor limit (less 64) that MAX_CONNECTIONS leaves, when that is less',
    hint: 'a whole number from 1',
    examples: ['1024']
  }),
  UPSTREAM_POLICY: Type.Union(UPSTREAM_POLICIES.map(policy => Type.Literal(policy)), {
    default: SETTING_DEFAULTS.UPSTREAM_POLICY,
    description: 'with several UPSTREAM_URL servers, which one gets the next request or WebSocket: least-connections (the one with the fewest now, as nginx least_conn) or round-robin (each in turn)',
    hint: `one of ${UPSTREAM_POLICIES.join(', ')}`,
    examples: ['least-connections']
  }),
  UPSTREAM_HEALTH_INTERVAL: Type.String({
    default: SETTING_DEFAULTS.UPSTREAM_HEALTH_INTERVAL,
    pattern: DURATION_PATTERN,
    description: 'with several UPSTREAM_URL servers, how often each is asked GET /api/server/ping, nginx time syntax; one that fails it, or refuses a connection, gets no requests until it answers again',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds), more than 0',
    examples: ['10s']
  }),
  REDIS_URL: Type.String({
    default: SETTING_DEFAULTS.REDIS_URL,
    pattern: '^(rediss?://\\S+)?$',
    description: 'a Redis (or Valkey) server that several proxy instances share, e.g. Immich\'s own: the access key brake counts the wrong keys of all of them (redis:// or rediss:// for TLS; a password as redis://:password@host:6379). Unreachable: each instance counts its own, with a warning, until it is back. Empty: this process only',
    hint: 'a redis:// or rediss:// URL',
    examples: ['redis://redis:6379'],
    secret: true
  }),
  TRUST_PROXY: Type.String({
    default: SETTING_DEFAULTS.TRUST_PROXY,
    description: 'comma-separated addresses or CIDRs (or loopback, linklocal, uniquelocal) of proxies in front of this one whose X-Forwarded-* and Forwarded headers are kept (from others, Forwarded, X-Forwarded-Port, -Server, -Prefix and -Ssl are removed); empty trusts nobody',
    hint: 'a comma-separated list of addresses or CIDRs',
    examples: ['10.0.0.0/8,loopback']
  }),
  ACCESS_KEY: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY,
    // no empty entry: an empty key would admit a request with an empty X-Access-Key header
    pattern: '^([^\\s,]+(,[^\\s,]+)*)?$',
    description: 'comma-separated keys; when set every request needs the header X-Access-Key equal to one of them, else 403 (GET /.well-known/immich excepted: it says where the API is)',
    hint: 'a comma-separated list of keys without spaces or empty entries',
    secret: true,
    examples: ['s3cret-key-one,s3cret-key-two']
  }),
  ACCESS_KEY_FILE: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_FILE,
    description: 'file with one access key per line (Docker secrets), added to ACCESS_KEY; re-read when it changes',
    hint: 'a file path',
    examples: ['/run/secrets/immich_access_keys']
  }),
  ACCESS_KEY_MAX_FAILURES: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_MAX_FAILURES,
    pattern: '^[0-9]+$',
    description: 'wrong access keys allowed from one address within ACCESS_KEY_FAILURE_WINDOW before it gets 429 for ACCESS_KEY_COOLDOWN; 0 = no limit',
    hint: 'a whole number',
    examples: ['10']
  }),
  ACCESS_KEY_FAILURE_WINDOW: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_FAILURE_WINDOW,
    pattern: DURATION_PATTERN,
    description: 'window in which wrong access keys are counted, nginx time syntax',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['10m']
  }),
  ACCESS_KEY_COOLDOWN: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_COOLDOWN,
    pattern: DURATION_PATTERN,
    description: 'how long an address that failed too often gets 429, nginx time syntax',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['15m']
  }),
  ACCESS_KEY_COOKIE_MAX_AGE: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_COOKIE_MAX_AGE,
    pattern: DURATION_PATTERN,
    description: 'lifetime of the cookie a browser gets from the unlock page; 0 turns the unlock page off',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['30d']
  }),
  ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS,
    pattern: BOOLEAN_PATTERN,
    description: 'with an access key or TLS_CLIENT_CA_FILE set, a request carrying a session token or API key that Immich confirms passes without the key or a client certificate (the CLI, the apps, a logged-in browser)',
    hint: 'true or false',
    examples: ['false']
  }),
  ACCESS_KEY_ALLOW_SHARE_LINKS: Type.String({
    default: SETTING_DEFAULTS.ACCESS_KEY_ALLOW_SHARE_LINKS,
    pattern: BOOLEAN_PATTERN,
    description: "with an access key set, the requests a shared link's page makes (and only those) pass without it when Immich confirms the link",
    hint: 'true or false',
    examples: ['true']
  }),
  ADMIN_HOST: Type.String({
    default: SETTING_DEFAULTS.ADMIN_HOST,
    pattern: '^\\S+$',
    description: 'address of the admin listener (health, readiness, metrics); loopback keeps it private',
    hint: 'a host name or address',
    examples: ['127.0.0.1']
  }),
  ADMIN_PORT: Type.String({
    default: SETTING_DEFAULTS.ADMIN_PORT,
    pattern: '^([0-9]{1,5}|off)$',
    description: 'port of the admin listener: /livez, /readyz, /metrics; off: none',
    hint: 'a port number from 1 to 65535, or off',
    examples: ['9090']
  }),
  SHUTDOWN_TIMEOUT: Type.String({
    default: SETTING_DEFAULTS.SHUTDOWN_TIMEOUT,
    pattern: DURATION_PATTERN,
    description: 'on SIGTERM/SIGINT, how long requests in flight (uploads) may take to finish before the process exits',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['30s']
  }),
  LOAD_SHED_EVENT_LOOP_DELAY: Type.String({
    default: SETTING_DEFAULTS.LOAD_SHED_EVENT_LOOP_DELAY,
    pattern: DURATION_PATTERN,
    description: 'new requests get 503 + Retry-After while the event loop lags more than this; 0 = never',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['1s']
  }),
  LOAD_SHED_MEMORY: Type.String({
    default: SETTING_DEFAULTS.LOAD_SHED_MEMORY,
    pattern: SIZE_PATTERN,
    description: 'new requests get 503 + Retry-After while the process RSS is above this, nginx size syntax; 0 = never',
    hint: 'a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit)',
    examples: ['1g']
  }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map(level => Type.Literal(level)), {
    default: SETTING_DEFAULTS.LOG_LEVEL,
    description: `pino log level: ${LOG_LEVELS.join(', ')}`,
    hint: `a log level (${LOG_LEVELS.join(', ')})`,
    examples: ['info']
  })
})

export type Env = Static<typeof EnvSchema>
type Name = keyof Env

/** A configuration error: `message` is one line per bad variable, fit to print as it is. */
export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
  }
}

function schemaOf (name: Name): TSchema {
  return EnvSchema.properties[name]
}

/** `PORT="0" is not a port number from 1 to 65535, e.g. PORT=8080` */
function problem (name: Name, value: string, what: string): string {
  const schema = schemaOf(name)
  const subject = schema.secret === true ? name : `${name}=${JSON.stringify(value)}`
  return `${subject} ${what}, e.g. ${name}=${schema.examples[0]}`
}

function upstreamOrigin (value: string): string | Error {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return new Error('is not a URL')
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    return new Error('has a path, query or fragment; Immich is served on the root path only')
  }
  if (url.username !== '' || url.password !== '') return new Error('has a user name or password, which Immich does not take')
  return url.origin
}

function upstreamOrigins (value: string): string[] | Error {
  const origins: string[] = []
  for (const entry of value.split(',').map(part => part.trim())) {
    const origin = upstreamOrigin(entry)
    if (origin instanceof Error) return new Error(value.includes(',') ? `has ${JSON.stringify(entry)}, which ${origin.message}` : origin.message)
    if (origins.includes(origin)) return new Error(`names ${origin} twice`)
    origins.push(origin)
  }
  return origins
}

function redisUrl (value: string): string | Error {
  try {
    return new URL(value).hostname === '' ? new Error('has no host') : value
  } catch {
    return new Error('is not a URL')
  }
}

function interval (value: string): number | Error {
  const ms = duration(value)
  return typeof ms === 'number' && ms === 0 ? new Error('is 0; a check needs some time between two') : ms
}

function lifetime (value: string): number | Error {
  const ms = parseDuration(value)
  return Number.isSafeInteger(ms) ? ms : new Error('is longer than any duration this proxy can count')
}

function port (value: string): number | Error {
  const number = Number(value)
  return number >= 1 && number <= 65535 ? number : new Error(`is not ${schemaOf('PORT').hint}`)
}

function size (value: string): number | Error {
  const bytes = parseSize(value)
  return Number.isSafeInteger(bytes) ? bytes : new Error('is larger than any size this proxy can count')
}

function duration (value: string): number | Error {
  const ms = parseDuration(value)
  return ms <= LONGEST_TIMER ? ms : new Error('is longer than 24 days, the longest timeout Node keeps; 0 means no timeout')
}

function trustedProxies (value: string): string[] | Error {
  const entries = value.split(',').map(entry => entry.trim()).filter(entry => entry !== '')
  try {
    proxyAddr.compile(entries)
  } catch (error) {
    // proxy-addr's own words name the entry: "invalid IP address: foo"
    return new Error(`is not ${schemaOf('TRUST_PROXY').hint} (${(error as Error).message})`)
  }
  return entries
}

/**
 * Throws a ConfigError with one line per bad variable. An empty or blank value means the default.
 * Pure: tests pass literal objects, the server passes process.env.
 */
export function parseConfig (env: Record<string, string | undefined>) {
  const names = Object.keys(EnvSchema.properties) as Name[]
  const problems = new Map<Name, string>()
  const values = {} as Record<Name, string>
  for (const name of names) {
    const schema = schemaOf(name)
    const value = env[name]?.trim() ?? ''
    if (value === '') {
      values[name] = schema.default
    } else if (Value.Check(schema, value)) {
      values[name] = value
    } else {
      problems.set(name, problem(name, value, `is not ${schema.hint}`))
    }
  }

  function convert<T> (name: Name, to: (value: string) => T | Error): T {
    if (values[name] === undefined) return undefined as T
    const result = to(values[name])
    if (result instanceof Error) problems.set(name, problem(name, values[name], result.message))
    return result as T
  }
  const raw = values as Env
  const tls = {
    certFile: raw.TLS_CERT_FILE,
    keyFile: raw.TLS_KEY_FILE,
    selfSigned: raw.TLS_SELF_SIGNED === 'true'
  }
  // a value refused above is undefined here
  const acmeDomains = [...new Set((raw.ACME_DOMAINS ?? '').split(',').map(name => name.trim().toLowerCase()).filter(name => name !== ''))]
  const acmeOn = acmeDomains.length > 0
  const tlsOn = tls.selfSigned || tls.certFile !== '' || tls.keyFile !== '' || acmeOn
  if ((tls.certFile === '') !== (tls.keyFile === '')) {
    const missing: Name = tls.certFile === '' ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'
    const given: Name = missing === 'TLS_CERT_FILE' ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'
    problems.set(missing, problem(missing, '', `is empty while ${given} is set; HTTPS needs both files`))
  } else if (tls.selfSigned && tls.certFile !== '') {
    problems.set('TLS_SELF_SIGNED', problem('TLS_SELF_SIGNED', 'true', 'is set together with TLS_CERT_FILE/TLS_KEY_FILE; choose one'))
  }
  if (acmeOn && (tls.selfSigned || tls.certFile !== '' || tls.keyFile !== '')) {
    const other = tls.selfSigned ? 'TLS_SELF_SIGNED' : 'TLS_CERT_FILE/TLS_KEY_FILE'
    problems.set('ACME_DOMAINS', problem('ACME_DOMAINS', raw.ACME_DOMAINS, `is set together with ${other}; choose one way to get the certificate`))
  }
  const acmeChallenge = raw.ACME_CHALLENGE !== ''
    ? raw.ACME_CHALLENGE as AcmeChallengeType
    : raw.ACME_DNS_HOOK !== '' ? 'dns-01' : raw.HTTP_PORT === '' ? 'tls-alpn-01' : 'http-01'
  if (acmeOn && acmeChallenge === 'http-01' && raw.HTTP_PORT === '') {
    problems.set('ACME_CHALLENGE', problem('ACME_CHALLENGE', raw.ACME_CHALLENGE, 'needs HTTP_PORT, the plain-HTTP listener the CA connects to (published on port 80)'))
  }
  if (acmeOn && acmeChallenge === 'dns-01' && raw.ACME_DNS_HOOK === '') {
    problems.set('ACME_CHALLENGE', problem('ACME_CHALLENGE', raw.ACME_CHALLENGE, 'needs ACME_DNS_HOOK, the command that sets the TXT records'))
  }
  if (acmeOn && acmeChallenge !== 'dns-01' && raw.ACME_DNS_HOOK !== '') {
    problems.set('ACME_DNS_HOOK', problem('ACME_DNS_HOOK', raw.ACME_DNS_HOOK, `is set while ACME_CHALLENGE=${raw.ACME_CHALLENGE}; the hook serves dns-01 only: leave ACME_CHALLENGE empty or set it to dns-01`))
  }
  const wildcard = acmeDomains.find(name => name.startsWith('*.'))
  if (wildcard !== undefined && acmeChallenge !== 'dns-01' && !problems.has('ACME_CHALLENGE')) {
    problems.set('ACME_DOMAINS', problem('ACME_DOMAINS', raw.ACME_DOMAINS, `names ${wildcard}: a CA checks a wildcard by dns-01 only, so set ACME_DNS_HOOK`))
  }
  if ((raw.ACME_EAB_KID === '') !== (raw.ACME_EAB_HMAC_KEY === '')) {
    const missing: Name = raw.ACME_EAB_KID === '' ? 'ACME_EAB_KID' : 'ACME_EAB_HMAC_KEY'
    const given: Name = missing === 'ACME_EAB_KID' ? 'ACME_EAB_HMAC_KEY' : 'ACME_EAB_KID'
    problems.set(missing, problem(missing, '', `is empty while ${given} is set; an external account binding needs both`))
  }
  if (raw.TLS_CLIENT_CA_FILE !== '' && !tlsOn) {
    problems.set('TLS_CLIENT_CA_FILE', problem('TLS_CLIENT_CA_FILE', raw.TLS_CLIENT_CA_FILE, 'is set without TLS; client certificates come with the TLS handshake, so set TLS_CERT_FILE/TLS_KEY_FILE, TLS_SELF_SIGNED=true or ACME_DOMAINS'))
  }
  if (raw.HTTP_PORT !== '' && !tlsOn) {
    problems.set('HTTP_PORT', problem('HTTP_PORT', raw.HTTP_PORT, 'is set without TLS; it redirects to HTTPS, so set TLS_CERT_FILE/TLS_KEY_FILE, TLS_SELF_SIGNED=true or ACME_DOMAINS'))
  }
  const upstreams = convert('UPSTREAM_URL', upstreamOrigins)
  const config = {
    // every server, in the order given; `upstream` is the first (the only one, usually)
    upstreams,
    upstream: upstreams?.[0] as string,
    upstreamPolicy: raw.UPSTREAM_POLICY,
    upstreamHealthInterval: convert('UPSTREAM_HEALTH_INTERVAL', interval),
    host: raw.HOST,
    port: raw.PORT === '' ? (tlsOn ? DEFAULTS.tlsPort : DEFAULTS.port) : convert('PORT', port),
    tls: tlsOn ? tls : undefined,
    tlsClientCaFile: raw.TLS_CLIENT_CA_FILE === '' ? undefined : raw.TLS_CLIENT_CA_FILE,
    acme: acmeOn
      ? {
          domains: acmeDomains,
          email: raw.ACME_EMAIL === '' ? undefined : raw.ACME_EMAIL,
          directory: ACME_DIRECTORIES[raw.ACME_DIRECTORY] ?? raw.ACME_DIRECTORY,
          caFile: raw.ACME_CA_FILE === '' ? undefined : raw.ACME_CA_FILE,
          storage: raw.ACME_STORAGE,
          challenge: acmeChallenge,
          dnsHook: raw.ACME_DNS_HOOK === '' ? undefined : raw.ACME_DNS_HOOK,
          externalAccountBinding: raw.ACME_EAB_KID === '' ? undefined : { kid: raw.ACME_EAB_KID, hmacKey: raw.ACME_EAB_HMAC_KEY },
          profile: raw.ACME_PROFILE === '' ? undefined : raw.ACME_PROFILE
        }
      : undefined,
    http2: raw.HTTP2 === 'true',
    hsts: raw.HSTS === 'off' ? false as const : raw.HSTS,
    httpPort: raw.HTTP_PORT === '' ? undefined : convert('HTTP_PORT', port),
    httpsRedirectPort: convert('HTTPS_REDIRECT_PORT', port),
    bodyLimit: convert('BODY_LIMIT', size),
    proxyTimeout: convert('PROXY_TIMEOUT', duration),
    // undefined: derived at start from the fd limit (src/connection-limits.ts)
    maxConnections: raw.MAX_CONNECTIONS === '' ? undefined : Number(raw.MAX_CONNECTIONS),
    upstreamMaxConnections: raw.UPSTREAM_MAX_CONNECTIONS === '' ? undefined : Number(raw.UPSTREAM_MAX_CONNECTIONS),
    redisUrl: raw.REDIS_URL === '' ? undefined : convert('REDIS_URL', redisUrl),
    trustProxy: convert('TRUST_PROXY', trustedProxies),
    accessKeys: convert('ACCESS_KEY', value => value === '' ? [] : value.split(',')),
    accessKeyFile: raw.ACCESS_KEY_FILE === '' ? undefined : raw.ACCESS_KEY_FILE,
    accessKeyMaxFailures: Number(raw.ACCESS_KEY_MAX_FAILURES),
    accessKeyFailureWindow: convert('ACCESS_KEY_FAILURE_WINDOW', duration),
    accessKeyCooldown: convert('ACCESS_KEY_COOLDOWN', duration),
    accessKeyCookieMaxAge: convert('ACCESS_KEY_COOKIE_MAX_AGE', lifetime),
    accessKeyAllowImmichCredentials: raw.ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS === 'true',
    accessKeyAllowShareLinks: raw.ACCESS_KEY_ALLOW_SHARE_LINKS === 'true',
    adminHost: raw.ADMIN_HOST,
    adminPort: raw.ADMIN_PORT === 'off' ? undefined : convert('ADMIN_PORT', port),
    shutdownTimeout: convert('SHUTDOWN_TIMEOUT', duration),
    loadShedEventLoopDelay: convert('LOAD_SHED_EVENT_LOOP_DELAY', duration),
    loadShedMemory: convert('LOAD_SHED_MEMORY', size),
    logLevel: raw.LOG_LEVEL
  }
  if (!problems.has('HTTP_PORT') && config.httpPort !== undefined && config.httpPort === config.port) {
    problems.set('HTTP_PORT', problem('HTTP_PORT', raw.HTTP_PORT, 'is the same port as the HTTPS listener'))
  }
  if (problems.size > 0) throw new ConfigError(names.flatMap(name => problems.get(name) ?? []))
  return config
}

export type Config = ReturnType<typeof parseConfig>

// Variables that a shell, Node, npm or a container sets and that are not settings, however close
// to one they look (HOME is two letters from HOST; curl's HTTP_PROXY shares HTTP_PORT's prefix).
const COMMON_VARIABLES = new Set([
  'HOME', 'HOSTNAME', 'PATH', 'PWD', 'OLDPWD', 'USER', 'LOGNAME', 'SHELL', 'SHLVL', 'TERM', 'LANG', 'TZ', 'TMPDIR',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY'
])
const COMMON_PREFIXES = ['NODE_', 'NPM_', 'LC_', 'XDG_']

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]
}

/**
 * Variables of `env` within two edits of a setting's name, or sharing the first word of a setting
 * of several words (`ACCESS_`, `TLS_`, …): a misspelled ACCESS_KEY would otherwise start an
 * unguarded proxy without a word. Only UPPER_SNAKE names are considered.
 */
export function misspelledSettings (env: Record<string, string | undefined>): Array<{ name: string, meant: string }> {
  const known = Object.keys(EnvSchema.properties)
  const prefixes = new Set(known.filter(name => name.includes('_')).map(name => name.slice(0, name.indexOf('_') + 1)))
  const found: Array<{ name: string, meant: string }> = []
  for (const name of Object.keys(env).sort()) {
    if (known.includes(name) || !/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(name)) continue
    if (COMMON_VARIABLES.has(name) || COMMON_PREFIXES.some(prefix => name.startsWith(prefix))) continue
    const prefix = name.slice(0, name.indexOf('_') + 1)
    const candidates = prefixes.has(prefix) ? known.filter(setting => setting.startsWith(prefix)) : known
    let meant = candidates[0]
    let distance = Infinity
    for (const setting of candidates) {
      const d = editDistance(name, setting)
      if (d < distance) [meant, distance] = [setting, d]
    }
    if (prefixes.has(prefix) || distance <= 2) found.push({ name, meant })
  }
  return found
}
