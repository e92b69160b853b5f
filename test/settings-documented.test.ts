// Every setting the schema accepts is documented where operators look: the README's
// configuration table and .env.example, which the compose stack copies to proxy.env.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EnvSchema } from '../src/config.js'
import { root } from './helpers/ops.js'

const names = Object.keys(EnvSchema.properties)

t.test('README has a row for every setting', async t => {
  const rows = readFileSync(join(root, 'README.md'), 'utf8').split('\n').filter(line => line.startsWith('|'))
  for (const name of names) t.ok(rows.some(row => row.includes(`\`${name}\``)), name)
})

t.test('.env.example has a line for every setting', async t => {
  const example = readFileSync(join(root, '.env.example'), 'utf8')
  for (const name of names) t.match(example, new RegExp(`^(# ?)?${name}=`, 'm'), name)
  const unknown = [...example.matchAll(/^(?:# ?)?([A-Z][A-Z0-9_]+)=/gm)].map(match => match[1]).filter(name => !names.includes(name))
  t.same(unknown, [], 'and none the schema does not know')
})
