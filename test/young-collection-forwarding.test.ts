import t from 'tap'
import { request } from 'undici'
import { NUDGE_BYTES } from '../plugins/forwarding/young-collection.js'
import { startProxy, startUpstream } from './helper.js'
import { Digest, digestOf, generatedBody } from './helpers/bodies.js'
import { recordCollections } from './helpers/gc.js'

// Both directions of a transfer count towards the young-generation collections: the upload's
// chunks as undici hands them to Immich (its onBodySent), the download's as they arrive. A
// body of 3 x NUDGE_BYTES brings exactly 3, whatever was counted before it (less than one, since
// the count carries its overshoot over).
t.test('uploads and downloads through the proxy each bring one collection per NUDGE_BYTES', async t => {
  const collections = recordCollections(t)

  const size = 3 * NUDGE_BYTES
  const uploaded: { digest?: Digest } = {}
  const upstream = await startUpstream(t, (req, res) => {
    if (req.method === 'POST') {
      digestOf(req).then(digest => { uploaded.digest = digest; res.end('stored') }, () => res.destroy())
      return
    }
    generatedBody(size, new Digest()).pipe(res)
  })
  const proxy = await startProxy(t, upstream.url)

  const sent = new Digest()
  const up = await request(`${proxy.url}/api/assets`, { method: 'POST', body: generatedBody(size, sent), headers: { 'content-type': 'application/octet-stream' } })
  t.equal(await up.body.text(), 'stored')
  t.equal(uploaded.digest?.sha1(), sent.sha1(), `the ${size}-byte upload arrived whole`)
  t.equal(collections.length, 3, 'three collections for the upload')
  t.same(collections[0], { type: 'minor' })

  const down = await request(`${proxy.url}/api/assets/1/original`)
  const received = await digestOf(down.body)
  t.equal(received.bytes, size, `the ${size}-byte download arrived whole`)
  t.equal(collections.length, 6, 'three more for the download')
})
