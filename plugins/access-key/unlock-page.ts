// The page a browser gets instead of a bare 403 when the access key guard is on: browsers
// cannot add an X-Access-Key header, so the user types the key once and gets a signed cookie.
// Self-contained (no external assets): nothing else on this host is reachable before unlocking.

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, char => escapes[char])
}

/**
 * The gate's pages for browsers, in one look: `title` after "Immich — ", `css` for the box, `body`
 * as markup (escaped by the caller).
 */
export function gatePage (title: string, css: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Immich — ${escapeHtml(title)}</title>
<style>
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;background:#f6f6f4;color:#222;display:grid;place-items:center;min-height:100vh;margin:0}
h1{font-size:1.4rem;margin:0 0 .4rem}
${css}
</style>
</head>
<body>
${body}
</body>
</html>
`
}

export function unlockPage (action: string, next: string, message?: string): string {
  return gatePage('access key required', `form{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;display:grid;gap:.8rem;width:min(22rem,92vw)}
input,button{font:inherit;padding:.6rem;border-radius:6px;border:1px solid #bbb}
button{background:#4250af;color:#fff;border:0;cursor:pointer}
p.error{color:#b00020;margin:0}`, `<form method="post" action="${escapeHtml(action)}">
<h1>Access key required</h1>
<label for="key">This Immich server asks for an access key.</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}">
${message === undefined ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`}
<button type="submit">Unlock</button>
</form>`)
}

/**
 * A cool-down as a person reads it: seconds under a minute, else minutes (and hours), rounded up
 * so that nobody is told to come back before the brake lets them in.
 */
export function waitInWords (seconds: number): string {
  const unit = (count: number, name: string): string => `${count} ${name}${count === 1 ? '' : 's'}`
  if (seconds < 60) return unit(seconds, 'second')
  const minutes = Math.ceil(seconds / 60)
  if (minutes < 60) return unit(minutes, 'minute')
  const hours = Math.floor(minutes / 60)
  return minutes % 60 === 0 ? unit(hours, 'hour') : `${unit(hours, 'hour')} ${unit(minutes % 60, 'minute')}`
}

const BASE = 'http://unlock.invalid'

/**
 * Where the unlock form sends the browser back to: only a path on this host, else `/` (no open
 * redirect). The value is parsed the way the browser will parse the Location header (WHATWG URL:
 * tabs and newlines dropped, `\` read as `/`), and what is returned is that parse serialised, so
 * it is ASCII (a valid header value) and means for the browser what was checked here.
 */
export function safeNext (next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/')) return '/'
  let url: URL
  try {
    url = new URL(next, BASE)
  } catch {
    return '/'
  }
  // `/.//evil.example` resolves to the path `//evil.example`, which as a Location is another host
  if (url.origin !== BASE || url.pathname.startsWith('//')) return '/'
  return url.pathname + url.search + url.hash
}
