// RFC 9110 §7.6.1: a proxy removes the Connection header, every field it names, and the
// connection-specific fields a sender may forget to name there. Proxy-Authorization belongs to
// the hop that asked for it (RFC 9110 §11.7.2), never to Immich.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

const ALWAYS_HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings'
]

/** Deletes hop-by-hop fields from `headers` in place and returns it. */
export function stripHopByHop<T extends IncomingHttpHeaders | OutgoingHttpHeaders> (headers: T): T {
  const connection = headers.connection
  if (connection !== undefined) {
    for (const name of String(connection).split(',')) {
      const field = name.trim().toLowerCase()
      if (field !== '') delete headers[field]
    }
  }
  for (const name of ALWAYS_HOP_BY_HOP) delete headers[name]
  return headers
}
