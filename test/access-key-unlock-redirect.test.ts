// After the unlock form, the browser is sent to `next`, which the form carries and anyone can
// set: it must stay a path on this host (no open redirect to a look-alike login page). Checked
// the way the browser reads Location: WHATWG URL resolution against the page's address.
import t from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { postUnlock } from './helpers/access-key.js'

const HOSTILE = [
  '//evil.example', '//evil.example/photos', 'https://evil.example', 'http://evil.example/', 'evil.example',
  '/\\evil.example', '\\\\evil.example', '/\\/evil.example', '/\t/evil.example', '/\n/evil.example',
  '/.//evil.example', '/..//evil.example', '/./\\evil.example', ' //evil.example', 'javascript:alert(1)', '',
  '//[not-an-address', '/\\exa%mple' // the last two are not even URLs
]

t.test('next stays on this host; anything else goes to /', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_MAX_FAILURES: '0' })
  const origin = new URL(proxy.url).origin

  for (const next of HOSTILE) {
    const answer = await postUnlock(proxy.url, { key: 'k', next })
    t.equal(answer.status, 303, JSON.stringify(next))
    t.equal(answer.location, '/', `${JSON.stringify(next)} → /`)
  }
  const missing = await postUnlock(proxy.url, { key: 'k' })
  t.equal(missing.location, '/', 'no next at all → /')

  const kept: Array<[string, string]> = [
    ['/photos/abc?at=2024#top', '/photos/abc?at=2024#top'],
    ['/albums//x', '/albums//x'],
    ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
    ['/search?q=a%20b&type=smart', '/search?q=a%20b&type=smart'],
    ['/people/日本', '/people/%E6%97%A5%E6%9C%AC'],
    ['/search?q="x"', '/search?q=%22x%22']
  ]
  for (const [next, location] of kept) {
    const answer = await postUnlock(proxy.url, { key: 'k', next })
    t.equal(answer.status, 303, JSON.stringify(next))
    t.equal(answer.location, location, `${JSON.stringify(next)} kept (encoded as a header must be)`)
    t.equal(new URL(answer.location as string, proxy.url + '/some/page').origin, origin, 'the browser stays on this host')
  }
})

t.test('a wrong key keeps a hostile next out of the form too', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'k', ACCESS_KEY_MAX_FAILURES: '0' })
  const answer = await postUnlock(proxy.url, { key: 'wrong', next: '//evil.example' })
  t.equal(answer.status, 403)
  t.match(answer.body, '<input type="hidden" name="next" value="/">')
})
