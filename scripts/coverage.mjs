// npm test's coverage recorder, loaded with --import into each test process (scripts/test.mjs).
//
// It records V8's precise coverage of the transpiled src/ and plugins/ only, in the test process
// only, and writes it where `c8 report` reads it, with each file's source map and line lengths.
// NODE_V8_COVERAGE would instead reach every Node process a test starts: the proxy's bundle,
// whose source map also points at src/, would then count its own coverage (wrongly: its lines
// map onto the sources only roughly), and each such process would write ~15 MB at exit. Node 20
// also leaves line lengths out of its record for ES modules, which c8 needs to map lines back
// (nodejs/node#48460).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { findSourceMap } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const directory = process.env.IMMICH_PROXY_COVERAGE_DIR
const COVERED = /^file:.*\/\.test-build\/(src|plugins)\//

if (directory !== undefined) {
  const session = new Session()
  session.connect()
  session.post('Profiler.enable')
  session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true })
  // The session answers synchronously, so this runs to the end inside 'exit'.
  process.on('exit', () => {
    session.post('Profiler.takePreciseCoverage', (error, coverage) => {
      if (error !== null) {
        console.error(`coverage: ${error.message}`)
        return
      }
      const sourceMaps = {}
      const result = coverage.result.filter(script => COVERED.test(script.url))
      if (result.length === 0) return
      for (const script of result) {
        const text = readFileSync(fileURLToPath(script.url), 'utf8')
        sourceMaps[script.url] = {
          lineLengths: text.split(/\n|\u2028|\u2029/).map(line => line.length),
          data: findSourceMap(script.url)?.payload ?? inlineMap(text)
        }
      }
      mkdirSync(directory, { recursive: true })
      writeFileSync(join(directory, `coverage-${process.pid}-${Date.now()}.json`), JSON.stringify({ result, 'source-map-cache': sourceMaps }))
    })
  })
}

/** The map esbuild inlined as the file's last comment (a module whose map Node did not load). */
function inlineMap (text) {
  const marker = '//# sourceMappingURL=data:application/json;base64,'
  const at = text.lastIndexOf(marker)
  return at === -1 ? undefined : JSON.parse(Buffer.from(text.slice(at + marker.length).trim(), 'base64').toString('utf8'))
}
