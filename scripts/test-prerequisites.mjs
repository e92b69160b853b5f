// npm test's pretest: the tests drive curl as a real HTTP client, and run pebble, Let's Encrypt's
// test CA, for the ACME tests and redis-server (Immich's compose file runs Valkey, which speaks
// its protocol) for the brake shared through REDIS_URL. The other programs they start are
// Node's, npm's, or in every Debian/Ubuntu base: sh, env, script. On a machine with only Node and npm they are installed
// here when that can be done (root with apt-get); otherwise the run stops at once, saying what to
// install, rather than failing test by test.
import { execFileSync, spawnSync } from 'node:child_process'

// program → the Debian/Ubuntu package that brings it
const NEEDED = { curl: 'curl', pebble: 'pebble', 'pebble-challtestsrv': 'pebble', 'redis-server': 'redis-server' }
const found = tool => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0

const missing = [...new Set(Object.entries(NEEDED).filter(([tool]) => !found(tool)).map(([, pkg]) => pkg))]
if (missing.length > 0) {
  if (process.getuid?.() !== 0 || !found('apt-get')) {
    console.error(`npm test needs ${missing.join(', ')}: install ${missing.length > 1 ? 'them' : 'it'} with your package manager ` +
      `(Debian/Ubuntu: apt-get install ${missing.join(' ')}) and run npm test again`)
    process.exit(1)
  }
  console.log(`npm test: installing ${missing.join(', ')} with apt-get`)
  execFileSync('apt-get', ['update'], { stdio: 'inherit' })
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit' })
}
