import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { app as immichProxy, parseConfig } from '../src/index.js'
import { exposeGc } from './helpers/gc.js'

// An app that embeds the plugins on a Node started without --expose-gc is told so once, at
// start-up, instead of silently getting slower transfers.
async function warningsAt (t: Test, gc: (() => void) | undefined): Promise<string[]> {
  exposeGc(t, gc)
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, encoding, done) { lines.push(chunk.toString()); done() } })
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.register(immichProxy, parseConfig({ UPSTREAM_URL: 'http://127.0.0.1:2283' }))
  await app.ready()
  return lines.filter(line => line.includes('--expose-gc'))
}

t.test('without gc() exposed: one warning naming the flag', async t => {
  const warnings = await warningsAt(t, undefined)
  t.equal(warnings.length, 1)
  t.match(JSON.parse(warnings[0]), { level: 40, msg: /node runs without --expose-gc/ })
})

t.test('with gc() exposed: no warning', async t => {
  t.same(await warningsAt(t, () => {}), [])
})
