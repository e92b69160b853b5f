// Immich share links put their key in the query (`?key=`), other clients `token` and the like.

const SECRET_PARAMETER = /^(key|slug|token|access_?key|api_?key|apikey|password|secret|sig|signature|session|sessionkey|auth.*)$/i

/** The request path with the values of key-like query parameters replaced by [REDACTED]. */
export function redactedPath (url: string): string {
  const query = url.indexOf('?')
  if (query === -1) return url
  const masked = url.slice(query + 1).split('&').map(pair => {
    const equals = pair.indexOf('=')
    const name = equals === -1 ? pair : pair.slice(0, equals)
    let decoded = name
    try {
      decoded = decodeURIComponent(name)
    } catch {}
    return equals !== -1 && SECRET_PARAMETER.test(decoded) ? `${name}=[REDACTED]` : pair
  })
  return `${url.slice(0, query)}?${masked.join('&')}`
}
