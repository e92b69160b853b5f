// `npm run soak`: a 4 GiB upload and a 4 GiB download, each intact and under the RSS bound
// (about half a minute; the suite runs the same cases at 256 MiB).
import t from 'tap'
import { downloadStreamsWithin, PEAK_RSS_LIMIT, uploadStreamsWithin } from '../helpers/streaming-memory.js'

const SIZE = 4 * 1024 ** 3

t.test(`a 4 GiB upload with Content-Length streams through intact in under ${PEAK_RSS_LIMIT / 1e6} MB`, async t => await uploadStreamsWithin(t, SIZE, PEAK_RSS_LIMIT))
t.test(`a 4 GiB download streams through intact in under ${PEAK_RSS_LIMIT / 1e6} MB`, async t => await downloadStreamsWithin(t, SIZE, PEAK_RSS_LIMIT))
