// RFC 9110 §7.6.1: a proxy removes the Connection header, every field it names, and the
// connection-specific fields a sender may forget to name there. Proxy-Authorization belongs to
// the hop that asked for it (RFC 9110 §11.7.2), never to Immich.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

const ALWAYS_HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings'
]

export const HOP_BY_HOP: ReadonlySet<string> = new Set(ALWAYS_HOP_BY_HOP)

export function connectionFields (connection: string | string[] | number | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined
  const fields = new Set<string>()
  for (const name of String(connection).split(',')) {
    const field = name.trim().toLowerCase()
    // keep-alive and close are the common values, and both are dropped anyway
    if (field !== '' && field !== 'close' && field !== 'keep-alive') fields.add(field)
  }
  return fields.size === 0 ? undefined : fields
}

export function stripHopByHop<T extends IncomingHttpHeaders | OutgoingHttpHeaders> (headers: T): T {
  const named = connectionFields(headers.connection)
  if (named !== undefined) for (const field of named) delete headers[field]
  for (const name of ALWAYS_HOP_BY_HOP) delete headers[name]
  return headers
}

// Node's parser answers 400 to a request that declares both framings, so the order never decides.
export function declaresBody (headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return length !== undefined ? length !== '0' : headers['transfer-encoding'] !== undefined
}
