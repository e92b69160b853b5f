// nginx's size and duration syntax, so values copied from the reference configs
// (`client_max_body_size 50000M`, `proxy_read_timeout 600s`) work unchanged.

/** `512`, `512k`, `10m`, `50000M`, `1g` (case-insensitive, powers of 1024) → bytes. */
export const SIZE_PATTERN = '^[0-9]+[kKmMgG]?$'

/** `500ms`, `30s`, `10m`, `1h`, `1d`, or a bare number of seconds, as nginx reads it. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)?$'

const sizeFactor: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }
const durationFactor: Record<string, number> = { ms: 1, '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseSize (text: string): number {
  const unit = /[a-z]$/i.test(text) ? text.slice(-1).toLowerCase() : ''
  return Number(unit === '' ? text : text.slice(0, -1)) * sizeFactor[unit]
}

export function parseDuration (text: string): number {
  const match = /^([0-9]+)([a-z]*)$/.exec(text) as RegExpExecArray
  return Number(match[1]) * durationFactor[match[2]]
}

/** The size as BODY_LIMIT would be written: `50000M`, `512k`, `1g`, bytes when no unit divides it. */
export function formatSize (bytes: number): string {
  for (const unit of ['g', 'm', 'k']) {
    if (bytes > 0 && bytes % sizeFactor[unit] === 0) return `${bytes / sizeFactor[unit]}${unit === 'k' ? 'k' : unit.toUpperCase()}`
  }
  return String(bytes)
}
