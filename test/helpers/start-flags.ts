// The start script in package.json (`node [flags] <entry>`), read once, so that the bench and the
// tests run the proxy exactly as `npm start` does: same flags, same file (they cannot drift).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './root.js'

const words = ((): string[] => {
  const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const words = scripts.start.trim().split(/\s+/)
  if (words[0] !== 'node' || words.length < 2 || words.at(-1)?.startsWith('-') === true) throw new Error(`start script is not "node [flags] <entry>": ${scripts.start}`)
  return words
})()

/** Node's flags, e.g. ['--expose-gc']. */
export const START_FLAGS: string[] = words.slice(1, -1)

/** The file `npm start` runs, relative to the repository root: the bundle, dist/immich-proxy.cjs. */
export const START_ENTRY: string = words[words.length - 1]
