// plugins/defaults.ts is the one source of the defaults: the config applies them, the plugins
// fall back on them, and --help, .env.example and the README's table show them.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULTS, SETTING_DEFAULTS } from '../plugins/defaults.js'
import { EnvSchema, parseConfig } from '../src/config.js'
import { helpText } from '../src/help.js'
import { connectionLimits } from '../src/connection-limits.js'
import { root } from './helpers/ops.js'

const names = Object.keys(EnvSchema.properties) as Array<keyof typeof SETTING_DEFAULTS>

t.test('the schema takes every default from the module, and the module names no other setting', async t => {
  t.same(Object.keys(SETTING_DEFAULTS).sort(), [...names].sort())
  for (const name of names) t.equal(EnvSchema.properties[name].default, SETTING_DEFAULTS[name], name)
})

t.test('the settings\' defaults, parsed, are the values the plugins fall back on', async t => {
  const config = parseConfig({})
  t.match(config, {
    upstream: DEFAULTS.upstream,
    host: DEFAULTS.host,
    port: DEFAULTS.port,
    http2: DEFAULTS.http2,
    hsts: DEFAULTS.hsts,
    httpsRedirectPort: DEFAULTS.httpsRedirectPort,
    bodyLimit: DEFAULTS.bodyLimit,
    proxyTimeout: DEFAULTS.proxyTimeout,
    accessKeyMaxFailures: DEFAULTS.accessKeyMaxFailures,
    accessKeyFailureWindow: DEFAULTS.accessKeyFailureWindow,
    accessKeyCooldown: DEFAULTS.accessKeyCooldown,
    accessKeyCookieMaxAge: DEFAULTS.accessKeyCookieMaxAge,
    adminHost: DEFAULTS.adminHost,
    adminPort: DEFAULTS.adminPort,
    shutdownTimeout: DEFAULTS.shutdownTimeout,
    loadShedEventLoopDelay: DEFAULTS.loadShedEventLoopDelay,
    loadShedMemory: DEFAULTS.loadShedMemory,
    logLevel: DEFAULTS.logLevel
  })
  t.equal(parseConfig({ TLS_SELF_SIGNED: 'true' }).port, DEFAULTS.tlsPort, 'with TLS')
  t.equal(connectionLimits({ ...config, httpPort: undefined }, 'unlimited').upstreamMaxConnections, DEFAULTS.upstreamMaxConnections,
    'UPSTREAM_MAX_CONNECTIONS empty, no file-descriptor limit')
})

t.test('--help shows each default', async t => {
  const help = helpText().split('\n')
  for (const name of names) {
    const shown = SETTING_DEFAULTS[name] === '' ? 'unset' : SETTING_DEFAULTS[name]
    t.ok(help.includes(`  ${name} [${shown}]`), `${name} [${shown}]`)
  }
})

t.test('.env.example sets each setting to its default, or shows an example for one that has none', async t => {
  const lines = readFileSync(join(root, '.env.example'), 'utf8').split('\n')
  for (const name of names) {
    const set = lines.filter(line => line.startsWith(`${name}=`))
    const example = lines.filter(line => line.startsWith(`# ${name}=`))
    if (set.length === 1) {
      t.equal(set[0], `${name}=${SETTING_DEFAULTS[name]}`, `${name}: its default`)
    } else {
      t.equal(set.length, 0, `${name} is set at most once`)
      t.equal(SETTING_DEFAULTS[name], '', `${name} is only shown as an example: it has no default`)
      t.ok(example.length > 0, `${name} is shown`)
    }
  }
})

/** The README's settings table: each row's names (`A` / `B`) and its default cell. */
function readmeDefaults (): Map<string, string> {
  const found = new Map<string, string>()
  for (const line of readFileSync(join(root, 'README.md'), 'utf8').split('\n')) {
    const row = /^\| (`[A-Z0-9_]+`(?: \/ `[A-Z0-9_]+`)*) \| ([^|]+) \|/.exec(line)
    if (row === null) continue
    const rowNames = [...row[1].matchAll(/`([A-Z0-9_]+)`/g)].map(match => match[1])
    const cell = row[2].trim()
    // `127.0.0.1` / `9090`: one default per name
    const values = rowNames.length > 1 && cell.includes(' / ') ? cell.split(' / ') : rowNames.map(() => cell)
    rowNames.forEach((name, i) => found.set(name, values[i].trim()))
  }
  return found
}

t.test('the README\'s table shows each default', async t => {
  const table = readmeDefaults()
  for (const name of names) {
    const cell = table.get(name)
    if (name === 'PORT') {
      t.equal(cell, `\`${DEFAULTS.port}\`, \`${DEFAULTS.tlsPort}\` with TLS`, name)
    } else if (SETTING_DEFAULTS[name] === '') {
      t.match(cell, /^(unset|empty)$/, `${name}: no default`)
    } else {
      t.equal(cell, `\`${SETTING_DEFAULTS[name]}\``, name)
    }
  }
})
