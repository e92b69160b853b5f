// Concurrent WebSockets all open and all echo; 1 000 at once run in `npm run soak` (test/soak/).
import t from 'tap'
import { concurrentWebSockets } from './helpers/websocket-concurrency.js'

const SOCKETS = 200

t.test(`${SOCKETS} concurrent WebSockets all open and all echo`, async t => await concurrentWebSockets(t, SOCKETS))
