// Memory of forwarded bodies. Each chunk a socket reads is a Buffer whose bytes live outside the
// JS heap until V8 collects the small object holding them; a proxy makes little other garbage, so
// V8 waits and the chunks pile up. After every NUDGE_BYTES forwarded, a young-generation
// collection (quick when nearly all of it is dead) gives their memory back at once. Figures and
// the choice of NUDGE_BYTES: docs/design.md, "Memory of transfers".
//
// It needs V8's gc() exposed (`node --expose-gc`, as the start script and the container run it);
// an app embedding the plugins without that flag goes without, and the proxy plugin says so in
// a warning at start-up.

export const NUDGE_BYTES = 8 * 1024 * 1024

type Collect = (options: { type: 'minor' }) => void

// read when used, not at load: tests stand in for it, and an app may expose it late
function exposedGc (): Collect | undefined {
  return (globalThis as { gc?: Collect }).gc
}

let sinceLastCollection = 0

/** Whether V8's gc() is exposed, so that forwarding can collect as it goes. */
export function collectionsAvailable (): boolean {
  return typeof exposedGc() === 'function'
}

/** Counts bytes forwarded (either direction) and collects the young generation every NUDGE_BYTES. */
export function forwarded (bytes: number): void {
  sinceLastCollection += bytes
  if (sinceLastCollection < NUDGE_BYTES) return
  // the overshoot counts towards the next one: one collection per NUDGE_BYTES, exactly
  sinceLastCollection -= NUDGE_BYTES
  exposedGc()?.({ type: 'minor' })
}
