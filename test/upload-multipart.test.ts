import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { startProxy, startUpstream, type Upstream } from './helper.js'
import { receiveBody } from './helpers/bodies.js'

interface Seen { contentType: string | undefined, body: Buffer }

async function immich (t: Test, seen: Seen[]): Promise<Upstream> {
  return await startUpstream(t, (req, res) => {
    receiveBody(req).then(({ body }) => {
      seen.push({ contentType: req.headers['content-type'], body })
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"asset-1","status":"created"}')
    })
  })
}

// a photo whose bytes include CRLFs and dashes, the material multipart boundaries are made of
function photo (): Buffer {
  return Buffer.concat([randomBytes(512 * 1024), Buffer.from('\r\n--\r\n----not-the-boundary\r\n'), randomBytes(512 * 1024)])
}

t.test('a multipart upload shaped like Immich\'s POST /api/assets arrives byte for byte', async t => {
  const seen: Seen[] = []
  const upstream = await immich(t, seen)
  const proxy = await startProxy(t, upstream.url)
  const boundary = 'dart-http-boundary-kP9vq3+ZtW_x.Hn7aJ2mYcL0eRbQf1'
  const field = (name: string, value: string) =>
    `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  const body = Buffer.concat([
    Buffer.from(field('deviceAssetId', 'IMG_0042.HEIC-1712345678') + field('deviceId', 'iPhone-of-Ana') +
      field('fileCreatedAt', '2024-04-05T10:11:12.000Z') + field('fileModifiedAt', '2024-04-05T10:11:12.000Z') +
      field('isFavorite', 'false') + field('duration', '0:00:00.000000')),
    Buffer.from(`--${boundary}\r\ncontent-type: image/jpeg\r\ncontent-disposition: form-data; name="assetData"; filename="IMG_0042.jpg"\r\n\r\n`),
    photo(),
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  const contentType = `multipart/form-data; boundary=${boundary}`
  const res = await request(`${proxy.url}/api/assets`, {
    method: 'POST',
    headers: { 'content-type': contentType, 'x-immich-checksum': 'c2hhMQ==' },
    body
  })
  t.equal(res.statusCode, 201)
  t.same(await res.body.json(), { id: 'asset-1', status: 'created' })
  t.equal(seen.length, 1)
  t.equal(seen[0].contentType, contentType, 'Content-Type with its boundary untouched')
  t.ok(seen[0].body.equals(body), `the ${body.length} bytes arrive identical`)
})

t.test('a FormData upload from a fetch client parses at Immich into the same fields and file', async t => {
  const seen: Seen[] = []
  const upstream = await immich(t, seen)
  const proxy = await startProxy(t, upstream.url)
  const file = photo()
  const form = new FormData()
  form.append('deviceAssetId', 'web-IMG_0042.jpg-1048609-1712345678')
  form.append('deviceId', 'WEB')
  form.append('fileCreatedAt', '2024-04-05T10:11:12.000Z')
  form.append('assetData', new Blob([file], { type: 'image/jpeg' }), 'IMG_0042.jpg')
  // Node's own fetch and FormData, as a web client sends them (undici 7's FormData with Node 26's
  // Blob never finishes its body, proxy or not)
  const res = await fetch(`${proxy.url}/api/assets`, { method: 'POST', body: form })
  t.equal(res.status, 201)
  await res.arrayBuffer()

  t.equal(seen.length, 1)
  t.match(seen[0].contentType, /^multipart\/form-data; boundary=\S+$/)
  // parsed with the boundary Immich received: intact only if the proxy changed neither
  const parsed = await new Response(seen[0].body, { headers: { 'content-type': seen[0].contentType ?? '' } }).formData()
  t.equal(parsed.get('deviceAssetId'), 'web-IMG_0042.jpg-1048609-1712345678')
  t.equal(parsed.get('deviceId'), 'WEB')
  t.equal(parsed.get('fileCreatedAt'), '2024-04-05T10:11:12.000Z')
  const asset = parsed.get('assetData') as File
  t.equal(asset.name, 'IMG_0042.jpg')
  t.equal(asset.type, 'image/jpeg')
  t.ok(Buffer.from(await asset.arrayBuffer()).equals(file), 'the file part arrives identical')
})
