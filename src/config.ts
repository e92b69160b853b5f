// The configuration contract (shared/DESIGN.md): every setting is an environment variable, read
// once, validated here, and turned into typed options for src/app.ts. The schema is the single
// source of truth: its defaults, descriptions, hints and examples also feed the error messages.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import proxyAddr from 'proxy-addr'
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './nginx-units.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

// Node keeps timers as a signed 32-bit count of milliseconds and cuts longer ones to 24.8 days,
// with only a warning.
const LONGEST_TIMER = 2 ** 31 - 1

// `hint` completes "is not …" in an error message; `secret` keeps the value out of it.
export const EnvSchema = Type.Object({
  UPSTREAM_URL: Type.String({
    default: 'http://immich-server:2283',
    pattern: '^https?://\\S+$',
    description: 'the Immich server, an http(s) URL without a path (Immich is served on the root path only)',
    hint: 'an http:// or https:// URL',
    examples: ['http://immich-server:2283']
  }),
  HOST: Type.String({
    default: '0.0.0.0',
    pattern: '^\\S+$',
    description: 'address the main listener binds to',
    hint: 'a host name or address',
    examples: ['0.0.0.0']
  }),
  PORT: Type.String({
    default: '8080',
    pattern: '^[0-9]{1,5}$',
    description: 'port of the main listener (1-65535)',
    hint: 'a port number from 1 to 65535',
    examples: ['8080']
  }),
  BODY_LIMIT: Type.String({
    default: '50000M',
    pattern: SIZE_PATTERN,
    description: 'largest request body, nginx size syntax (k, m, g); 0 means no limit. Mirrors client_max_body_size 50000M',
    hint: 'a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit)',
    examples: ['50000M']
  }),
  PROXY_TIMEOUT: Type.String({
    default: '600s',
    pattern: DURATION_PATTERN,
    description: 'how long the upstream or the client may stay silent, nginx time syntax (ms, s, m, h, d). Mirrors proxy_read_timeout/proxy_send_timeout/send_timeout 600s',
    hint: 'a duration in nginx syntax (a number with ms, s, m, h or d; a bare number is seconds)',
    examples: ['600s']
  }),
  TRUST_PROXY: Type.String({
    default: '',
    description: 'comma-separated addresses or CIDRs (or loopback, linklocal, uniquelocal) of proxies in front of this one whose X-Forwarded-* headers are kept; empty trusts nobody',
    hint: 'a comma-separated list of addresses or CIDRs',
    examples: ['10.0.0.0/8,loopback']
  }),
  ACCESS_KEY: Type.String({
    default: '',
    // no empty entry: an empty key would admit a request with an empty X-Access-Key header
    pattern: '^([^\\s,]+(,[^\\s,]+)*)?$',
    description: 'comma-separated keys; when set every request needs the header X-Access-Key equal to one of them, else 403',
    hint: 'a comma-separated list of keys without spaces or empty entries',
    secret: true,
    examples: ['s3cret-key-one,s3cret-key-two']
  }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map(level => Type.Literal(level)), {
    default: 'info',
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
 * Validates the environment and returns the typed configuration, or throws a ConfigError with
 * one line per bad variable. Only the variables the schema names are read; an empty or blank
 * value means the default. Pure: tests pass literal objects, the server passes process.env.
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

  // Values that passed their pattern, converted; a conversion that fails adds its own problem.
  function convert<T> (name: Name, to: (value: string) => T | Error): T {
    if (values[name] === undefined) return undefined as T
    const result = to(values[name])
    if (result instanceof Error) problems.set(name, problem(name, values[name], result.message))
    return result as T
  }
  const raw = values as Env
  const config = {
    upstream: convert('UPSTREAM_URL', upstreamOrigin),
    host: raw.HOST,
    port: convert('PORT', port),
    bodyLimit: convert('BODY_LIMIT', size),
    proxyTimeout: convert('PROXY_TIMEOUT', duration),
    trustProxy: convert('TRUST_PROXY', trustedProxies),
    accessKeys: convert('ACCESS_KEY', value => value === '' ? [] : value.split(',')),
    logLevel: raw.LOG_LEVEL
  }
  if (problems.size > 0) throw new ConfigError(names.flatMap(name => problems.get(name) ?? []))
  return config
}

export type Config = ReturnType<typeof parseConfig>
