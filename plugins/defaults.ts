// Every default, in one place. SETTING_DEFAULTS are the environment variables' defaults as a user
// writes them (the config schema applies them; --help, .env.example and the README show them:
// test/defaults-shown.test.ts). DEFAULTS are the same values in the units the plugins take, for
// an app that embeds a plugin and leaves an option out (test/defaults-shown.test.ts checks that
// the schema's strings parse to them).

const MiB = 1024 * 1024
const SECOND = 1000
const MINUTE = 60 * SECOND
const DAY = 24 * 60 * MINUTE

/** UPSTREAM_POLICY's values: how a request chooses among several Immich servers (immich-servers.ts). */
export const UPSTREAM_POLICIES = ['least-connections', 'round-robin'] as const

export const SETTING_DEFAULTS = {
  UPSTREAM_URL: 'http://immich-server:2283',
  HOST: '0.0.0.0',
  // empty: 8080, or 8443 when TLS is on (DEFAULTS.port, DEFAULTS.tlsPort)
  PORT: '',
  TLS_CERT_FILE: '',
  TLS_KEY_FILE: '',
  TLS_SELF_SIGNED: 'false',
  TLS_CLIENT_CA_FILE: '',
  ACME_DOMAINS: '',
  ACME_EMAIL: '',
  // Let's Encrypt production (src/config.ts names its URL)
  ACME_DIRECTORY: 'letsencrypt',
  ACME_CA_FILE: '',
  ACME_STORAGE: './acme',
  // empty: dns-01 when ACME_DNS_HOOK is set, else http-01 when HTTP_PORT is, else tls-alpn-01
  ACME_CHALLENGE: '',
  ACME_DNS_HOOK: '',
  ACME_EAB_KID: '',
  ACME_EAB_HMAC_KEY: '',
  ACME_PROFILE: '',
  HTTP2: 'true',
  HSTS: 'max-age=31536000',
  HTTP_PORT: '',
  HTTPS_REDIRECT_PORT: '443',
  // nginx's reference config: client_max_body_size 50000M
  BODY_LIMIT: '50000M',
  // proxy_read_timeout, proxy_send_timeout and send_timeout 600s
  PROXY_TIMEOUT: '600s',
  // empty: derived from the file-descriptor limit at start (src/connection-limits.ts)
  MAX_CONNECTIONS: '',
  // empty: DEFAULTS.upstreamMaxConnections, or less when the file-descriptor limit is low
  UPSTREAM_MAX_CONNECTIONS: '',
  UPSTREAM_POLICY: 'least-connections',
  UPSTREAM_HEALTH_INTERVAL: '10s',
  REDIS_URL: '',
  TRUST_PROXY: '',
  ACCESS_KEY: '',
  ACCESS_KEY_FILE: '',
  ACCESS_KEY_MAX_FAILURES: '10',
  ACCESS_KEY_FAILURE_WINDOW: '10m',
  ACCESS_KEY_COOLDOWN: '15m',
  ACCESS_KEY_COOKIE_MAX_AGE: '30d',
  ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS: 'true',
  ACCESS_KEY_ALLOW_SHARE_LINKS: 'false',
  ADMIN_HOST: '127.0.0.1',
  ADMIN_PORT: '9090',
  SHUTDOWN_TIMEOUT: '30s',
  LOAD_SHED_EVENT_LOOP_DELAY: '1s',
  LOAD_SHED_MEMORY: '0',
  LOG_LEVEL: 'info'
} as const

export const DEFAULTS = {
  upstream: SETTING_DEFAULTS.UPSTREAM_URL,
  host: SETTING_DEFAULTS.HOST,
  port: 8080,
  tlsPort: 8443,
  http2: true,
  hsts: SETTING_DEFAULTS.HSTS,
  httpsRedirectPort: 443,
  bodyLimit: 50000 * MiB,
  proxyTimeout: 600 * SECOND,
  upstreamMaxConnections: 1024,
  upstreamPolicy: SETTING_DEFAULTS.UPSTREAM_POLICY,
  upstreamHealthInterval: 10 * SECOND,
  accessKeyMaxFailures: 10,
  accessKeyFailureWindow: 10 * MINUTE,
  accessKeyCooldown: 15 * MINUTE,
  accessKeyCookieMaxAge: 30 * DAY,
  accessKeyAllowImmichCredentials: true,
  accessKeyAllowShareLinks: false,
  adminHost: SETTING_DEFAULTS.ADMIN_HOST,
  adminPort: 9090,
  shutdownTimeout: 30 * SECOND,
  loadShedEventLoopDelay: 1 * SECOND,
  loadShedMemory: 0,
  logLevel: SETTING_DEFAULTS.LOG_LEVEL,
  /** Retry-After (seconds) on a 503 from load shedding or a full upstream pool. */
  retryAfter: 10,
  /** nginx keepalive_timeout 75s: browsers reuse connections for the timeline's thumbnails. */
  keepAliveTimeout: 75 * SECOND
} as const
