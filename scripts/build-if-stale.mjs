// `npm start`'s prestart and the tests' ensureBuilt(): `npm run build` only when an input of the
// build is newer than its last output, so a restart does not pay the ~7 s build each time.
// The bundle is written last (tsc, then scripts/bundle.mjs), so its mtime dates the whole build:
// a build that failed half-way leaves it older than the sources and the next start builds again.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The build's outputs, relative to the root: the bundle (bin, npm start) and the library entry. */
export const OUTPUTS = ['dist/immich-proxy.cjs', 'dist/src/index.js']

const INPUT_DIRS = ['src', 'plugins', 'scripts']
// node_modules/.package-lock.json changes with every install: new dependencies, new bundle
const INPUT_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'node_modules/.package-lock.json']

function mtime (path) {
  try {
    return statSync(path).mtimeMs
  } catch {
    return -1
  }
}

function filesUnder (dir) {
  try {
    return readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter(entry => entry.isFile())
      .map(entry => join(entry.parentPath ?? entry.path, entry.name))
  } catch {
    return []
  }
}

/**
 * Why `root` needs a build: its missing outputs, then the inputs newer than the oldest output
 * (paths relative to `root`); empty when it is up to date.
 */
export function staleInputs (root) {
  const missing = OUTPUTS.filter(output => mtime(join(root, output)) < 0)
  if (missing.length > 0) return missing
  const built = Math.min(...OUTPUTS.map(output => mtime(join(root, output))))
  return [...INPUT_DIRS.flatMap(dir => filesUnder(join(root, dir))), ...INPUT_FILES.map(file => join(root, file))]
    .filter(input => mtime(input) > built)
    .map(input => relative(root, input))
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const stale = staleInputs(root)
  if (stale.length === 0) {
    console.error('immich-proxy: build up to date')
  } else {
    const named = stale.length > 3 ? `${stale.slice(0, 3).join(', ')} and ${stale.length - 3} more` : stale.join(', ')
    console.error(`immich-proxy: building (newer than the last build, or missing: ${named})`)
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
    process.exitCode = build.status ?? 1
  }
}
