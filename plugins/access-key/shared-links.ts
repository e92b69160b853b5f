// The gate's way in for shared links (ACCESS_KEY_ALLOW_SHARE_LINKS): the requests a shared
// link's page makes, and only those, pass with a link that Immich confirms. The table is what
// Immich's web app requests on /share/<key> and /s/<slug> (web/src/routes/(user)/share and s,
// whose API calls carry `?key=` or `?slug=`), and the API routes Immich lets a shared link use
// (those marked `@Authenticated({ sharedLink: true })`, as listed by @immich/sdk 2.7 and 3.2;
// the README's "What opens the access key's gate" has the same table). Immich still checks each
// one itself: which album, which asset, whether downloads or uploads are allowed.
import type { FastifyRequest } from 'fastify'
import { shareCredential, queryOf, type ImmichCredential } from './immich-credentials.js'

/** Where the link's credential is: in the path of the page, in the query or headers of an API call, or nowhere. */
type Carrier = 'path key' | 'path slug' | 'query' | 'none'

export interface ShareLinkRequest {
  methods: readonly string[]
  path: RegExp
  carrier: Carrier
  what: string
}

const GET = ['GET', 'HEAD'] as const
// an Immich id (a UUID) or a share key (base64url), never a dot segment
const ID = '[A-Za-z0-9_-]+'
const FILE = '(?!\\.\\.?(?:/|$))[A-Za-z0-9_.-]+'

export const SHARE_LINK_REQUESTS: readonly ShareLinkRequest[] = [
  { methods: GET, path: new RegExp(`^/share/(${ID})(?:/photos/${ID})?/?$`), carrier: 'path key', what: 'the page of a link, or of one of its photos' },
  { methods: GET, path: new RegExp(`^/s/([^/?#]+)(?:/photos/${ID})?/?$`), carrier: 'path slug', what: 'the page of a link by its custom URL' },
  { methods: GET, path: new RegExp(`^/_app/(?:${FILE}/)*${FILE}$`), carrier: 'none', what: "the web app's scripts, styles and fonts" },
  { methods: GET, path: /^\/(?:custom\.css|manifest\.json|favicon\.ico|favicon-[0-9]+\.png|apple-icon-180\.png|feature-panel\.png)$/, carrier: 'none', what: 'icons, the manifest and the custom CSS the page links' },
  { methods: GET, path: /^\/api\/(?:server\/(?:config|features|theme|version|media-types|ping)|public\/config)$/, carrier: 'none', what: 'the server settings a page reads first, and the file types an upload may have (public in Immich)' },
  { methods: GET, path: /^\/api\/shared-links\/me$/, carrier: 'query', what: 'the link itself' },
  { methods: ['POST'], path: /^\/api\/shared-links\/login$/, carrier: 'query', what: "a password-protected link's password" },
  { methods: GET, path: new RegExp(`^/api/albums/${ID}(?:/map-markers)?$`), carrier: 'query', what: "the link's album and its map" },
  { methods: GET, path: /^\/api\/timeline\/buckets?$/, carrier: 'query', what: "the album's timeline" },
  { methods: GET, path: new RegExp(`^/api/assets/${ID}(?:/thumbnail|/original|/video/playback)?$`), carrier: 'query', what: 'a photo or video, its thumbnail, original and playback' },
  { methods: ['GET', 'HEAD', 'DELETE'], path: new RegExp(`^/api/assets/${ID}/video/stream/(?:${FILE}/)*${FILE}$`), carrier: 'query', what: 'video streaming (HLS playlists and segments)' },
  { methods: ['POST'], path: /^\/api\/download\/(?:info|archive)$/, carrier: 'query', what: 'downloads, where the link allows them' },
  { methods: ['POST'], path: /^\/api\/search\/metadata$/, carrier: 'query', what: "search within the link's assets" },
  { methods: ['POST'], path: /^\/api\/assets$/, carrier: 'query', what: 'uploads, where the link allows them' },
  { methods: ['PUT'], path: new RegExp(`^/api/(?:albums/${ID}/assets|albums/assets|shared-links/${ID}/assets)$`), carrier: 'query', what: 'adding the uploads to the album or link' }
]

/** The path as sent, without the query. */
function pathOf (url: string): string {
  const at = url.indexOf('?')
  return at === -1 ? url : url.slice(0, at)
}

/**
 * What the shared-link way makes of a request: not one of the link's requests (undefined), one
 * that needs no link (`'none'`: the page's static files and public settings), or the link's
 * credential to confirm (`undefined` credential when the request carries none).
 */
export function shareLinkRequest (request: FastifyRequest): { row: ShareLinkRequest, credential?: ImmichCredential } | undefined {
  const path = pathOf(request.url)
  for (const row of SHARE_LINK_REQUESTS) {
    if (!row.methods.includes(request.method)) continue
    const match = row.path.exec(path)
    if (match === null) continue
    if (row.carrier === 'none') return { row }
    if (row.carrier === 'path key') return { row, credential: { kind: 'share-key', value: match[1] } }
    if (row.carrier === 'path slug') {
      let slug = match[1]
      try {
        slug = decodeURIComponent(slug)
      } catch {}
      return { row, credential: { kind: 'share-slug', value: slug } }
    }
    return { row, credential: shareCredential(request, queryOf(request.url)) }
  }
  return undefined
}
