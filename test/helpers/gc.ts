// Stand-ins for V8's gc() (exposed by `node --expose-gc`) in tests of the young-generation
// collections (plugins/forwarding/young-collection.ts); what was there before is put back at teardown.
import type { Test } from 'tap'

/** Sets globalThis.gc to `gc` (undefined: not exposed) for the rest of test `t`. */
export function exposeGc (t: Test, gc: ((options: unknown) => void) | undefined): void {
  const global = globalThis as { gc?: unknown }
  const before = global.gc
  t.teardown(() => { global.gc = before })
  global.gc = gc
}

/** A gc() that records each call's options, set for the rest of test `t`. */
export function recordCollections (t: Test): unknown[] {
  const calls: unknown[] = []
  exposeGc(t, options => { calls.push(options) })
  return calls
}
