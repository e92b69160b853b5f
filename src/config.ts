// The configuration contract (shared/DESIGN.md): every setting is an environment variable, read
// once, validated here, and turned into typed options for src/app.ts. The schema is the single
// source of truth: its defaults, descriptions and examples also feed the error messages.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import proxyAddr from 'proxy-addr'
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './nginx-units.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const EnvSchema = Type.Object({
  UPSTREAM_URL: Type.String({
    default: 'http://immich-server:2283',
    pattern: '^https?://[^\\s]+$',
    description: 'the Immich server, an http(s) URL without a path (Immich is served on the root path only)',
    examples: ['http://immich-server:2283']
  }),
  HOST: Type.String({
    default: '0.0.0.0',
    minLength: 1,
    description: 'address the main listener binds to',
    examples: ['0.0.0.0']
  }),
  PORT: Type.String({
    default: '8080',
    pattern: '^[0-9]{1,5}$',
    description: 'port of the main listener (1-65535)',
    examples: ['8080']
  }),
  BODY_LIMIT: Type.String({
    default: '50000M',
    pattern: SIZE_PATTERN,
    description: 'largest request body, nginx size syntax (k, m, g); 0 means no limit. Mirrors client_max_body_size 50000M',
    examples: ['50000M']
  }),
  PROXY_TIMEOUT: Type.String({
    default: '600s',
    pattern: DURATION_PATTERN,
    description: 'how long the upstream or the client may stay silent, nginx time syntax (ms, s, m, h). Mirrors proxy_read_timeout/proxy_send_timeout/send_timeout 600s',
    examples: ['600s']
  }),
  TRUST_PROXY: Type.String({
    default: '',
    pattern: '^[0-9A-Za-z.:/, ]*$',
    description: 'comma-separated addresses or CIDRs (or loopback, linklocal, uniquelocal) of proxies in front of this one whose X-Forwarded-* headers are kept; empty trusts nobody',
    examples: ['10.0.0.0/8,loopback']
  }),
  ACCESS_KEY: Type.String({
    default: '',
    pattern: '^[^\\s,]*(,[^\\s,]+)*$',
    description: 'comma-separated keys; when set every request needs the header X-Access-Key equal to one of them, else 403',
    examples: ['s3cret-key-one,s3cret-key-two']
  }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map(level => Type.Literal(level)), {
    default: 'info',
    description: `pino log level: ${LOG_LEVELS.join(', ')}`,
    examples: ['info']
  })
})

export type Env = Static<typeof EnvSchema>

/** A configuration error: `message` is one line per bad variable, fit to print as it is. */
export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
  }
}

function problem (name: string, value: string, what: string): string {
  const schema = EnvSchema.properties[name as keyof Env] as TSchema
  return `${name}: ${JSON.stringify(value)} ${what}; expected ${schema.description}, e.g. ${name}=${schema.examples[0]}`
}

/** Reads the variables the schema names from `env`; anything else in `env` is ignored. */
function readEnv (env: Record<string, string | undefined>): Env {
  const raw: Record<string, string> = {}
  for (const name of Object.keys(EnvSchema.properties)) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[name] = value.trim()
  }
  const withDefaults = Value.Default(EnvSchema, raw) as Env
  const problems = [...Value.Errors(EnvSchema, withDefaults)].map(error => {
    const name = error.path.split('/')[1] ?? error.path
    return problem(name, String(error.value), 'is not valid')
  })
  if (problems.length > 0) throw new ConfigError([...new Set(problems)])
  return withDefaults
}

function upstreamOrigin (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError([problem('UPSTREAM_URL', value, 'is not a URL')])
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new ConfigError([problem('UPSTREAM_URL', value, 'has a path, query or fragment (Immich cannot be served on a sub-path)')])
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError([problem('UPSTREAM_URL', value, 'carries credentials')])
  }
  return url.origin
}

function trustedProxies (value: string): string[] {
  const entries = value.split(',').map(entry => entry.trim()).filter(entry => entry !== '')
  try {
    proxyAddr.compile(entries)
  } catch (error) {
    throw new ConfigError([problem('TRUST_PROXY', value, `is not a list of addresses (${(error as Error).message})`)])
  }
  return entries
}

function port (value: string): number {
  const number = Number(value)
  if (number < 1 || number > 65535) throw new ConfigError([problem('PORT', value, 'is out of range')])
  return number
}

/**
 * Validates the environment and returns the typed configuration, or throws a ConfigError
 * naming every bad variable. Pure: tests pass literal objects, the server passes process.env.
 */
export function parseConfig (env: Record<string, string | undefined>) {
  const raw = readEnv(env)
  return {
    upstream: upstreamOrigin(raw.UPSTREAM_URL),
    host: raw.HOST,
    port: port(raw.PORT),
    bodyLimit: parseSize(raw.BODY_LIMIT),
    proxyTimeout: parseDuration(raw.PROXY_TIMEOUT),
    trustProxy: trustedProxies(raw.TRUST_PROXY),
    accessKeys: raw.ACCESS_KEY === '' ? [] : raw.ACCESS_KEY.split(','),
    logLevel: raw.LOG_LEVEL
  }
}

export type Config = ReturnType<typeof parseConfig>
