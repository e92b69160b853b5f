// package.json overrides light-my-request's cookie (2.x needs Node 22) with 1.x, which has the
// same stringifySetCookie({ name, value }) it calls: inject's `cookies` must still reach the route.
import t from 'tap'
import Fastify from 'fastify'

t.test('inject sends its cookies as one Cookie header', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/seen', async request => ({ cookie: request.headers.cookie }))
  const response = await app.inject({ url: '/seen', cookies: { unlock: 'a1b2', theme: 'dark mode' } })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { cookie: 'unlock=a1b2; theme=dark%20mode' })
})
