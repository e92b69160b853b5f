// Each chunk a socket reads lives outside the JS heap until V8 collects the small Buffer holding
// it; a proxy makes little other garbage, so the chunks pile up. A young-generation collection
// every NUDGE_BYTES forwarded gives their memory back at once (figures: docs/design.md, "Memory
// of transfers"). It needs `node --expose-gc`; without it the proxy plugin warns at start-up.

export const NUDGE_BYTES = 8 * 1024 * 1024

type Collect = (options: { type: 'minor' }) => void

// read when used, not at load: tests stand in for it, and an app may expose it late
function exposedGc (): Collect | undefined {
  return (globalThis as { gc?: Collect }).gc
}

let sinceLastCollection = 0

export function collectionsAvailable (): boolean {
  return typeof exposedGc() === 'function'
}

export function forwarded (bytes: number): void {
  sinceLastCollection += bytes
  if (sinceLastCollection < NUDGE_BYTES) return
  // the overshoot counts towards the next one: one collection per NUDGE_BYTES, exactly
  sinceLastCollection -= NUDGE_BYTES
  exposedGc()?.({ type: 'minor' })
}
