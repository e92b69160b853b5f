// The stand-in for Immich in bench/run.ts: as little work per request as Node allows, so that
// the proxies, not this server, set the numbers. Plain JavaScript so that it runs on bare
// `node` with no loader. Prints {"port":N} once it listens.
//
//   GET  /small           1 KiB of JSON (a timeline bucket, a thumbnail-sized answer)
//   POST /upload          reads and counts the body, answers {"bytes":N}
//   GET  /download/<N>    N bytes from one repeated buffer, with Content-Length
//   GET  /stats           {"sockets":N}: open WebSockets, so the bench knows when all arrived
//   POST /api/auth/validateToken  {"authStatus":true}: every credential is valid (bench/gate-cost.ts)
//   WebSocket on any path echoes every message, like a socket.io peer that answers at once
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

const small = Buffer.from(JSON.stringify({
  buckets: Array.from({ length: 24 }, (_, i) => ({ timeBucket: `2024-${String(i % 12 + 1).padStart(2, '0')}-01T00:00:00.000Z`, count: 100 + i }))
}).padEnd(1024, ' '))
const smallHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': small.length }

// Immich sends files through fs streams; 64 KiB is their chunk size.
const CHUNK = Number(process.env.CHUNK ?? 65536)
const block = Buffer.alloc(CHUNK, 'immich')

function download (res, total) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
  let left = total
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, block.length)
      left -= n
      if (!res.write(n === block.length ? block : block.subarray(0, n))) {
        res.once('drain', pump)
        return
      }
    }
    res.end()
  }
  pump()
}

const server = createServer((req, res) => {
  if (req.url === '/small') {
    res.writeHead(200, smallHeaders)
    res.end(small)
  } else if (req.url === '/upload') {
    let bytes = 0
    req.on('data', chunk => { bytes += chunk.length })
    req.on('end', () => {
      const body = JSON.stringify({ bytes })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  } else if (req.url.startsWith('/download/')) {
    download(res, Number(req.url.slice('/download/'.length)))
  } else if (req.url === '/api/auth/validateToken') {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 19 })
    res.end('{"authStatus":true}')
  } else if (req.url === '/stats') {
    res.end(JSON.stringify({ sockets: wss.clients.size }))
  } else {
    res.writeHead(404, { 'content-length': 0 })
    res.end()
  }
})
// Proxies keep idle connections to Immich across the pauses between figures; a 5 s keep-alive
// would race their reuse and show up as stray 502s.
server.keepAliveTimeout = 600_000
server.requestTimeout = 0
server.headersTimeout = 60_000
server.on('clientError', (error, socket) => { socket.destroy(error) })

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1024 * 1024 })
wss.on('connection', ws => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  ws.on('error', () => {})
})

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})
process.on('SIGTERM', () => process.exit(0))
