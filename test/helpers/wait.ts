// The tests' two bounded waits, one of each: `within` for a promise (a hang becomes a failure
// naming what never came) and `waitFor` for a condition checked again and again (a count, a log
// line, a /metrics sample, an answer that changes once a file or a clock moves).

/** `promise`, or a rejection naming `what` if it has not settled after `ms`: turns a hang into a failure. */
export async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export interface WaitOptions {
  /** Pause between two checks, 20 ms by default; longer for a check that costs a request or a handshake. */
  intervalMs?: number
  /** Describes the state the last check saw, appended to the timeout's error. */
  last?: () => string
}

/**
 * Resolves once `check()` holds, checking at once and then every `intervalMs`; rejects after
 * `ms` naming `what` (and the last state seen, when `last` is given). `check` may be async: it
 * is awaited before the next one starts, and a check that throws ends the wait with its error.
 */
export async function waitFor (check: () => boolean | Promise<boolean>, ms: number, what: string, { intervalMs = 20, last }: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) {
      const seen = last === undefined ? '' : `\nlast seen: ${last()}`
      throw new Error(`timed out after ${ms} ms waiting for ${what}${seen}`)
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}
