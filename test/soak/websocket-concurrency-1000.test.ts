// `npm run soak`: 1 000 WebSockets open at once through one proxy (the suite opens 200).
import t from 'tap'
import { concurrentWebSockets } from '../helpers/websocket-concurrency.js'

const SOCKETS = 1000

t.test(`${SOCKETS} concurrent WebSockets all open and all echo`, async t => await concurrentWebSockets(t, SOCKETS))
