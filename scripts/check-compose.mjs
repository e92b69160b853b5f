// CI (.ci/run): what the deploy steps of the README produce, checked as the tools see it.
// - docker-compose.yml as docker-compose renders it (Debian's 1.29 in CI), with Immich's example
//   .env and a proxy.env without TLS settings: immich-server keeps the healthcheck of Immich's
//   image (1.29 turned `healthcheck: disable: false` into `test: [NONE]`), immich-proxy waits
//   for it to be healthy, and no TLS_* variable comes from the compose file itself (the TLS
//   choice is proxy.env's).
// - .gitignore and .dockerignore cover the files and folders the deploy steps create, and
//   .dockerignore keeps what the Dockerfile copies.
// Prints what it checked; exits 1 naming each problem.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = fileURLToPath(new URL('..', import.meta.url))
const problems = []
const check = (ok, what) => {
  if (ok) console.log(`ok: ${what}`)
  else problems.push(what)
}

/** `docker-compose config` of the repository's compose file with these env files, parsed. */
function renderCompose (dotEnv, proxyEnv) {
  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-compose-'))
  try {
    copyFileSync(join(root, 'docker-compose.yml'), join(dir, 'docker-compose.yml'))
    writeFileSync(join(dir, '.env'), dotEnv)
    writeFileSync(join(dir, 'proxy.env'), proxyEnv)
    return parse(execFileSync(process.env.DOCKER_COMPOSE ?? 'docker-compose', ['config'], { cwd: dir, encoding: 'utf8' }))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A healthcheck as rendered: absent (the image's own applies) or one that is not turned off. */
function healthcheckKept (healthcheck) {
  if (healthcheck === undefined) return true
  const test = [healthcheck.test].flat()
  return healthcheck.disable !== true && test[0] !== 'NONE'
}

const immichEnv = readFileSync(join(root, 'deploy/immich.env.example'), 'utf8')
// .env.example less its TLS lines: whatever TLS_* the rendered service has is the compose file's
const proxyEnv = readFileSync(join(root, '.env.example'), 'utf8').split('\n').filter(line => !/^\s*TLS_/.test(line)).join('\n')
const services = renderCompose(immichEnv, proxyEnv).services
for (const name of ['immich-server', 'immich-machine-learning']) {
  check(healthcheckKept(services[name].healthcheck), `${name} keeps its image's healthcheck (rendered: ${JSON.stringify(services[name].healthcheck ?? 'none set, the image\'s applies')})`)
}
const proxy = services['immich-proxy']
check(proxy.depends_on?.['immich-server']?.condition === 'service_healthy', 'immich-proxy waits for immich-server to be healthy')
const tlsFromCompose = Object.keys(proxy.environment ?? {}).filter(name => name.startsWith('TLS_'))
check(tlsFromCompose.length === 0, `no TLS_* variable set by docker-compose.yml (found: ${tlsFromCompose.join(', ') || 'none'})`)
check(proxy.environment?.UPSTREAM_URL === 'http://immich-server:2283', 'immich-proxy reaches Immich at http://immich-server:2283')

// The deploy steps' leftovers: Immich's .env and the proxy's proxy.env (secrets), certificates,
// an ACME store, and Immich's data folders wherever deploy/immich.env.example puts them.
const dataFolders = ['UPLOAD_LOCATION', 'DB_DATA_LOCATION'].map(name => {
  const value = new RegExp(`^${name}=(.*)$`, 'm').exec(immichEnv)?.[1]?.trim()
  if (value === undefined || !value.startsWith('./')) throw new Error(`deploy/immich.env.example: ${name} is not a ./ folder`)
  return posix.normalize(value)
})
const deployFiles = ['.env', 'proxy.env', 'certs/fullchain.pem', 'certs/live/immich.example.org/privkey.pem', 'acme/account.json',
  ...dataFolders.map(folder => `${folder}/PG_VERSION`), `${dataFolders[0]}/upload/photo.jpg`]

// git: in a scratch repository with the checkout's .gitignore, the files created, status clean
const scratch = mkdtempSync(join(tmpdir(), 'immich-proxy-ignore-'))
try {
  const git = (...args) => execFileSync('git', ['-c', 'user.name=ci', '-c', 'user.email=ci@localhost', ...args], { cwd: scratch, encoding: 'utf8' })
  git('init', '-q')
  copyFileSync(join(root, '.gitignore'), join(scratch, '.gitignore'))
  git('add', '.gitignore')
  git('commit', '-qm', 'ignore rules')
  for (const file of deployFiles) {
    mkdirSync(dirname(join(scratch, file)), { recursive: true })
    writeFileSync(join(scratch, file), 'x')
  }
  const status = git('status', '--porcelain', '--untracked-files=all').trim()
  check(status === '', `git status is clean after the deploy steps create ${deployFiles.join(', ')}${status === '' ? '' : `:\n${status}`}`)
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

/**
 * Whether Docker leaves `path` out of the build context: the last .dockerignore pattern that
 * matches it or one of its parent folders decides (`!` keeps), as moby's patternmatcher does.
 */
function dockerIgnores (patterns, path) {
  let excluded = false
  const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'))
  for (const { pattern, keep } of patterns) {
    if (prefixes.some(prefix => pattern.test(prefix))) excluded = !keep
  }
  return excluded
}

function dockerPattern (line) {
  const keep = line.startsWith('!')
  const clean = posix.normalize((keep ? line.slice(1) : line).trim()).replace(/^\/+|\/+$/g, '')
  let source = ''
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i]
    if (c === '*' && clean[i + 1] === '*') {
      source += clean[i + 2] === '/' ? '(?:.*/)?' : '.*'
      i += clean[i + 2] === '/' ? 2 : 1
    } else if (c === '*') source += '[^/]*'
    else if (c === '?') source += '[^/]'
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return { pattern: new RegExp(`^${source}$`), keep }
}

const patterns = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n')
  .map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#')).map(dockerPattern)
const leftOut = [...deployFiles, 'node_modules/fastify/package.json', 'dist/immich-proxy.cjs', '.git/HEAD', 'test/helper.ts', 'bench/run.ts', 'README.md']
const sent = leftOut.filter(path => !dockerIgnores(patterns, path))
check(sent.length === 0, `.dockerignore leaves out ${leftOut.join(', ')}${sent.length === 0 ? '' : ` (sent: ${sent.join(', ')})`}`)

// every source of the Dockerfile's COPY from the context (not --from a stage), and what is in it
const copied = readFileSync(join(root, 'Dockerfile'), 'utf8').split('\n')
  .filter(line => /^COPY\s/i.test(line) && !/--from=/.test(line))
  .flatMap(line => line.trim().split(/\s+/).slice(1).filter(word => !word.startsWith('--')).slice(0, -1))
const filesOf = path => {
  try {
    return readdirSync(join(root, path), { recursive: true, withFileTypes: true }).filter(entry => entry.isFile())
      .map(entry => relative(root, join(entry.parentPath ?? entry.path, entry.name)).split(sep).join('/'))
  } catch {
    return [posix.normalize(path)] // a file
  }
}
const needed = copied.flatMap(filesOf)
const withheld = needed.filter(path => dockerIgnores(patterns, path))
check(withheld.length === 0, `.dockerignore keeps the ${needed.length} files the Dockerfile copies from ${copied.join(', ')}${withheld.length === 0 ? '' : ` (left out: ${withheld.join(', ')})`}`)

if (problems.length > 0) {
  for (const problem of problems) console.error(`not ok: ${problem}`)
  process.exit(1)
}
