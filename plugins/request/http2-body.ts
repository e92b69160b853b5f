// An HTTP/2 body is whole only at END_STREAM, but Node's compatibility layer ends the request
// stream the same way on a reset: by the client, or by nghttp2 for DATA frames that disagree with
// content-length (RFC 9113 §8.1.1). Passed on as is, a cut upload reaches Immich as a complete
// one. HTTP/1.1 needs none of this: Node's parser reports a cut body as aborted.
import createError from '@fastify/error'
import type { Http2ServerRequest, ServerHttp2Stream } from 'node:http2'
import { Transform, type Readable, type TransformCallback } from 'node:stream'

export const IncompleteBodyError = createError('IMMICH_PROXY_INCOMPLETE_BODY', 'The HTTP/2 request body was reset before END_STREAM or disagrees with its content-length', 400)

class EndStreamWatch {
  private endStream: boolean
  private endStreamBeforeReset = false

  constructor (private readonly stream: ServerHttp2Stream) {
    // a stream already closed when first seen cannot tell how it ended: taken as cut
    this.endStream = stream.readableEnded && !stream.closed
    stream.once('end', () => { if (!stream.closed) this.endStream = true })
    // END_STREAM and a reset read together: 'end' comes after the close, and Node also ends a
    // reset stream's readable side. Its state at the reset (emitted before that) tells them
    // apart: `ended` is END_STREAM read, where the public readableEnded waits for the data.
    stream.once('aborted', () => {
      this.endStreamBeforeReset = (stream as unknown as { _readableState: { ended: boolean } })._readableState.ended
    })
  }

  /** END_STREAM arrived, and every byte before it was handed on (a reset drops unread ones). */
  get whole (): boolean {
    return this.endStream || (this.endStreamBeforeReset && this.stream.readableEnded)
  }
}

/**
 * Ends only after the client's END_STREAM, else errors. With a content-length, the bytes that
 * complete it are held until then: Immich takes a request as complete at its last declared byte.
 */
class WholeBody extends Transform {
  private received = 0
  private held?: Buffer

  constructor (private readonly watch: EndStreamWatch, private readonly declared: number | undefined) {
    super()
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length
    if (this.declared !== undefined && this.received >= this.declared) {
      this.held = this.held === undefined ? chunk : Buffer.concat([this.held, chunk])
      callback()
    } else {
      callback(null, chunk)
    }
  }

  override _flush (callback: TransformCallback): void {
    if (!this.watch.whole || (this.declared !== undefined && this.received !== this.declared)) callback(new IncompleteBodyError())
    else callback(null, this.held)
  }
}

const kWatch = Symbol('immich-proxy.end-stream-watch')

function noop (): void {}

type Watched = Http2ServerRequest & { [kWatch]?: EndStreamWatch }

function streamWithBody (raw: unknown): ServerHttp2Stream | undefined {
  const stream = (raw as Partial<Http2ServerRequest>).stream
  return stream !== undefined && !stream.endAfterHeaders ? stream : undefined
}

export function watchEndStream (raw: unknown): void {
  const stream = streamWithBody(raw)
  if (stream !== undefined) (raw as Watched)[kWatch] = new EndStreamWatch(stream)
}

export function wholeBody (raw: unknown, payload: Readable): Readable {
  const watch = (raw as Watched)[kWatch]
  if (watch === undefined) return payload
  const length = (raw as Http2ServerRequest).headers['content-length']
  const whole = new WholeBody(watch, length === undefined ? undefined : Number(length))
  // Its error reaches undici when undici reads it; a body answered without being read has no
  // other reader, and an 'error' without a listener would end the process.
  whole.on('error', noop)
  // not pipeline(): the compatibility layer closes a request before its end even when whole
  return payload.pipe(whole)
}
