// Node's flags in package.json's start script (`node [flags] dist/src/server.js`), read once, so
// that the bench and the tests run the proxy exactly as `npm start` does (they cannot drift).
import { readFileSync } from 'node:fs'

export const START_FLAGS: string[] = (() => {
  const { scripts } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  const words = scripts.start.trim().split(/\s+/)
  if (words[0] !== 'node' || words.at(-1) !== 'dist/src/server.js') throw new Error(`start script is not "node [flags] dist/src/server.js": ${scripts.start}`)
  return words.slice(1, -1)
})()
