// The repository's root, found from this file: the nearest folder above it with a package.json.
// The same file runs from test/helpers/ (the benchmark, with tsx) and transpiled from
// .test-build/test/helpers/ (npm test, scripts/test.mjs), so no fixed count of '..' fits both.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`)
  }
}

export const root = findRoot(dirname(fileURLToPath(import.meta.url)))
