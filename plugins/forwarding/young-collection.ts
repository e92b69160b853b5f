// Memory of forwarded bodies. Every chunk a socket reads is a Buffer whose bytes live outside
// the JS heap, and Node frees those bytes only when V8 collects the small Buffer object that
// holds them. A proxy moving a gigabyte a second makes little other garbage, so V8 waits: the
// chunks pile up as "external memory" until V8's own limit for it sends it into slower, fuller
// collections. The forwarder knows how many bytes it has moved: after every NUDGE_BYTES it asks
// V8 for a young-generation collection, which is quick when nearly everything in it is dead,
// and the chunks' memory comes back at once. Measured on 2 GiB through one core (docs/design.md,
// "Memory of transfers"): downloads 950 -> 1 320 MB/s, uploads 640 -> 1 450 MB/s, and the proxy's
// memory during the transfer ~10 MB above idle instead of ~40. Every 4 MiB gained nothing more;
// every 32 MiB gained nothing at all (V8 got there first).
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
