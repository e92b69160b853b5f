// plugins/forwarding/upstream.ts loads undici's pool and header helper by file, not through the index
// (start-up time and memory, docs/design.md). This fails should an undici update move or change them.
import t from 'tap'
import { createRequire } from 'node:module'
import { Pool, util } from 'undici'

const require = createRequire(import.meta.url)

t.test("undici's pool and header-name helper are where upstream.ts takes them from", async t => {
  t.equal(require('undici/lib/dispatcher/pool.js'), Pool, 'the same Pool class the index exports')
  const { headerNameToString } = require('undici/lib/core/util.js') as typeof util
  t.equal(headerNameToString, util.headerNameToString, 'the same helper the index exports')
  t.equal(headerNameToString(Buffer.from('Content-Type')), 'content-type')
  t.equal(headerNameToString(Buffer.from('X-Immich-Checksum')), 'x-immich-checksum')
})
