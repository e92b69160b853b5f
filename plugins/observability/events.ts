// Node diagnostics channels: the access log publishes, the admin listener's metrics subscribe,
// and neither knows the other. A channel without subscribers costs one property read.
import { channel } from 'node:diagnostics_channel'

export interface RequestStarted {
  /** The request carries a body (an upload): Content-Length over 0, or a chunked/streamed body. */
  hasBody: boolean
}

export interface RequestDone extends RequestStarted {
  method: string
  statusCode: number
  bytesIn: number
  bytesOut: number
  durationMs: number
  /** From handing the request to Immich to Immich's response headers; undefined if it never went. */
  upstreamMs?: number
}

export interface WebSocketClosed {
  durationMs: number
  bytesFromClient: number
  bytesToClient: number
}

export interface AccessKeyRefused {
  /** missing: no key at all; wrong: a wrong key or a repeated header; brake: 429 cool-down. */
  reason: 'missing' | 'wrong' | 'brake'
}

export interface AcmeOrdered {
  /** issued: the CA's certificate was obtained; failed: the order ended without one. */
  result: 'issued' | 'failed'
}

export const requestStarted = channel('immich-proxy:request-started')
export const requestDone = channel('immich-proxy:request-done')
export const websocketOpened = channel('immich-proxy:websocket-opened')
export const websocketClosed = channel('immich-proxy:websocket-closed')
export const accessKeyRefused = channel('immich-proxy:access-key-refused')
export const acmeOrdered = channel('immich-proxy:acme-ordered')
