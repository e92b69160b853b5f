// `immich-proxy --help` prints every setting with its default, from the schema that validates
// them (src/config.ts), and starts nothing.
import t from 'tap'
import { EnvSchema } from '../src/config.js'
import { runServer, type ServerExit } from './helpers/ops.js'

async function helpOutput (flag: string): Promise<ServerExit> {
  // a bad setting in the environment does not stand in the way of reading the help
  return await runServer({ PORT: 'nope' }, { args: [flag] })
}

t.test('--help lists every variable of the schema with its default and description', async t => {
  const { code, stdout, stderr } = await helpOutput('--help')
  t.equal(code, 0)
  t.equal(stderr, '')
  t.match(stdout, /^immich-proxy: a reverse proxy made for Immich\.\n/)
  const lines = stdout.split('\n')
  const names = Object.keys(EnvSchema.properties)
  // each default against plugins/defaults.ts: test/defaults-shown.test.ts
  t.match(stdout, /^ {2}UPSTREAM_URL \[http:\/\/immich-server:2283\]\n {6}the Immich server, an http\(s\) URL/m, 'a setting, its default, then its description')
  t.match(stdout, /^ {2}ACCESS_KEY \[unset\]$/m, 'no default: unset')
  t.match(stdout, /^ {2}BODY_LIMIT \[50000M\]$/m, 'defaults as a user writes them')
  t.match(stdout, /^ {2}PROXY_TIMEOUT \[600s\]$/m)
  t.match(stdout, /^ {2}ADMIN_PORT \[9090\]$/m)
  t.match(stdout, /^ {2}SHUTDOWN_TIMEOUT \[30s\]$/m)
  t.equal(lines.filter(line => /^ {2}[A-Z0-9_]+ \[/.test(line)).length, names.length, 'no variable the schema does not know')

  t.same(await helpOutput('-h'), { code: 0, stdout, stderr: '' }, '-h is the same')
})
