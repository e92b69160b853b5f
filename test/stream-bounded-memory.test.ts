// Uploads and downloads larger than the proxy's RSS bound stream through intact: a proxy that
// held a body would fail. The 4 GiB cases are in `npm run soak` (test/soak/).
import t from 'tap'
import { downloadStreamsWithin, SUITE_PEAK_RSS_LIMIT, uploadStreamsWithin } from './helpers/streaming-memory.js'

const SIZE = 256 * 1024 ** 2

t.test(`a 256 MiB upload with Content-Length streams through intact in under ${SUITE_PEAK_RSS_LIMIT / 1e6} MB`, async t => await uploadStreamsWithin(t, SIZE, SUITE_PEAK_RSS_LIMIT))
t.test(`a 256 MiB download streams through intact in under ${SUITE_PEAK_RSS_LIMIT / 1e6} MB`, async t => await downloadStreamsWithin(t, SIZE, SUITE_PEAK_RSS_LIMIT))
