// `npm start` (the bundle as a program) reads .env from its working directory, as .env.example
// tells users to write it; the process environment wins over the file; a .env that cannot be
// used stops the start with a line naming the file, and a variable that is almost a setting,
// in the file or the environment, is warned about by name.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { runServer, spawnServer } from './helpers/ops.js'

// the answers are the point here: a busy test machine must not turn them into load shedding's 503
const NO_SHEDDING = { LOAD_SHED_EVENT_LOOP_DELAY: '0' }

async function statusWith (url: string, key?: string): Promise<number> {
  const response = await request(url, { headers: key === undefined ? {} : { 'x-access-key': key } })
  await response.body.dump()
  return response.statusCode
}

t.test('ACCESS_KEY from .env guards the proxy; a key in the environment wins over the file', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const dir = t.testdir({ '.env': `# written from .env.example\nUPSTREAM_URL=${upstream.url}\nACCESS_KEY=from-file\nLOG_LEVEL="info"\n` })

  const fromFile = await spawnServer(t, NO_SHEDDING, { cwd: dir })
  t.equal(await statusWith(`${fromFile.url}/api/server/ping`), 403, 'no key: refused')
  t.equal(await statusWith(`${fromFile.url}/api/server/ping`, 'from-file'), 200, 'the key of .env opens it, and UPSTREAM_URL of .env is used')
  t.match(fromFile.output(), `settings from ${join(dir, '.env')} and the environment`, 'the summary says where the settings came from')
  t.notMatch(fromFile.output(), /from-file/, 'the key is never logged')

  const both = await spawnServer(t, { ...NO_SHEDDING, ACCESS_KEY: 'from-env' }, { cwd: dir })
  t.equal(await statusWith(`${both.url}/api/server/ping`, 'from-env'), 200, 'the environment\'s key opens it')
  t.equal(await statusWith(`${both.url}/api/server/ping`, 'from-file'), 403, 'the file\'s does not')
})

t.test('without .env the settings come from the environment alone', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const proxy = await spawnServer(t, { ...NO_SHEDDING, UPSTREAM_URL: upstream.url }, { cwd: t.testdir() })
  t.equal(await statusWith(`${proxy.url}/api/server/ping`), 200)
  t.match(proxy.output(), /; settings from the environment"/)
})

t.test('a misspelled setting, in .env or in the environment, is warned about with the one meant', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const dir = t.testdir({ '.env': 'ACCES_KEY=s3cret-in-file\n' })
  const proxy = await spawnServer(t, { ...NO_SHEDDING, UPSTREAM_URL: upstream.url, TLS_CERT: '/certs/fullchain.pem', HOME: '/home/node', NODE_ENV: 'production' }, { cwd: dir })
  const warnings = proxy.lines.filter(line => line.level === 40).map(line => line.msg)
  t.same(warnings.filter(msg => String(msg).includes('not a setting')), [
    'ACCES_KEY is not a setting of immich-proxy and is ignored; did you mean ACCESS_KEY?',
    'TLS_CERT is not a setting of immich-proxy and is ignored; did you mean TLS_CERT_FILE?'
  ], 'one warning each, HOME and NODE_ENV left alone')
  t.notMatch(proxy.output(), /s3cret-in-file/, 'values are never logged')
  t.equal(await statusWith(`${proxy.url}/api/server/ping`), 200, 'and the misspelled key guards nothing, as warned')
})

t.test('a .env with a line that is not NAME=value stops the start, naming the file and the line only', async t => {
  const dir = t.testdir({ '.env': 'PORT=8080\nACCESS_KEY: s3cret-yaml\nHSTS="max-age=1;\n preload"\nexport LOG_LEVEL=info\nnot a setting\n' })
  const exit = await runServer({}, { cwd: dir })
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '')
  t.equal(exit.stderr, `immich-proxy: ${join(dir, '.env')}: lines 2, 6 are not NAME=value, e.g. ACCESS_KEY=s3cret-key-one\n`)
})

t.test('a .env that cannot be read stops the start, naming the file', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, '.env'))
  const exit = await runServer({}, { cwd: dir })
  t.equal(exit.code, 1)
  t.equal(exit.stderr, `immich-proxy: ${join(dir, '.env')} cannot be read (EISDIR)\n`)
})

t.test('a bad value in .env is reported like one in the environment', async t => {
  const dir = t.testdir()
  writeFileSync(join(dir, '.env'), 'BODY_LIMIT=12q\n')
  const exit = await runServer({}, { cwd: dir })
  t.equal(exit.code, 1)
  t.match(exit.stderr, /^immich-proxy: BODY_LIMIT="12q" is not a size/)
})
