// `immich-proxy --help`: every setting with its default, from the schema that validates them,
// so the help cannot drift from what the proxy accepts.
import { EnvSchema } from './config.js'

export function helpText (): string {
  const lines = [
    'immich-proxy: a reverse proxy made for Immich.',
    '',
    'Usage: immich-proxy            (settings come from the environment and ./.env, the environment winning)',
    '       immich-proxy --help',
    '       immich-proxy --healthcheck   (exit 0 when the running proxy\'s admin listener answers)',
    '',
    'Settings (environment variables, default in brackets):'
  ]
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    const fallback = schema.default === '' ? 'unset' : String(schema.default)
    lines.push(`  ${name} [${fallback}]`, `      ${schema.description as string}`)
  }
  return lines.join('\n') + '\n'
}
