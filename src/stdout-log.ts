// stdout written so that a reader that stops reading (a log driver under pressure, a fifo whose
// reader left) never holds up requests or shutdown: lines wait in a bounded buffer, the overflow
// is dropped and counted, and the count logged once stdout takes lines again.
import { hostname } from 'node:os'
import sonicBoom from 'sonic-boom'

/** What may wait for a stalled stdout before new lines are dropped. */
export const STDOUT_BUFFER_BYTES = 1024 * 1024

export interface LogDestination {
  write: (line: string) => boolean
}

function droppedReport (count: number): string {
  return JSON.stringify({
    level: 40, time: Date.now(), pid: process.pid, hostname: hostname(), droppedLines: count, msg: 'log lines dropped: stdout did not keep up'
  }) + '\n'
}

/**
 * Lines gathered into writes of 4 KiB or more, flushed every 250 ms (a write per line slows a busy
 * proxy). At exit what is left is written if stdout takes it, given up at its first refusal.
 */
export function stdoutLog (): LogDestination {
  let exiting = false
  let broken = false
  let dropped = 0
  let reporting = 0
  const sonic = new sonicBoom.SonicBoom({
    // fd 1 taken from Node's stdout, which, once created, puts a pipe in non-blocking mode: a
    // write to a full pipe then fails with EAGAIN at once instead of holding a thread forever
    fd: process.stdout.fd,
    sync: false,
    minLength: 4096,
    maxLength: STDOUT_BUFFER_BYTES,
    periodicFlush: 250,
    // a full pipe is tried again every 100 ms while the process runs, but never at exit
    retryEAGAIN: () => !exiting
  })
  // a dropped report gives its count back, to be reported with the next one
  sonic.on('drop', () => { dropped += reporting === 0 ? 1 : reporting })
  // EPIPE (the reader is gone) or any other write error: stdout is given up for good
  sonic.on('error', () => { broken = true })
  // a write went through: stdout is read again
  sonic.on('write', () => {
    if (dropped === 0) return
    reporting = dropped
    dropped = 0
    sonic.write(droppedReport(reporting))
    reporting = 0
  })
  process.once('exit', () => {
    exiting = true
    if (broken) return
    try {
      if (dropped > 0) sonic.write(droppedReport(dropped))
      sonic.flushSync()
    } catch {
      // stdout is full or gone: the lines left are lost, and the exit goes on
    }
  })
  return {
    write: line => {
      if (!broken) return sonic.write(line)
      dropped++
      return true
    }
  }
}
