// A variable that is almost a setting is most likely one mistyped: `ACCES_KEY=secret` would
// otherwise start an unguarded proxy without a word. The known names come from the schema.
import t from 'tap'
import { EnvSchema, misspelledSettings } from '../src/config.js'

t.test('a name within two edits of a setting, or with a setting\'s first word, names that setting', async t => {
  t.same(misspelledSettings({
    ACCES_KEY: 'secret',
    ACCESS_KEYS: 'secret',
    UPSTREAM_ULR: 'http://immich:2283',
    TLS_CERT: '/certs/fullchain.pem',
    TLS_KEY: '/certs/privkey.pem',
    BODYLIMIT: '1g',
    LOG_LEVELS: 'debug',
    ADMIN_ADDRESS: '0.0.0.0',
    PROT: '8080'
  }), [
    { name: 'ACCESS_KEYS', meant: 'ACCESS_KEY' },
    { name: 'ACCES_KEY', meant: 'ACCESS_KEY' },
    { name: 'ADMIN_ADDRESS', meant: 'ADMIN_HOST' },
    { name: 'BODYLIMIT', meant: 'BODY_LIMIT' },
    { name: 'LOG_LEVELS', meant: 'LOG_LEVEL' },
    { name: 'PROT', meant: 'PORT' },
    { name: 'TLS_CERT', meant: 'TLS_CERT_FILE' },
    { name: 'TLS_KEY', meant: 'TLS_KEY_FILE' },
    { name: 'UPSTREAM_ULR', meant: 'UPSTREAM_URL' }
  ])
})

t.test('every setting with a letter missing is caught, since the names come from the schema', async t => {
  for (const name of Object.keys(EnvSchema.properties)) {
    const typo = name.slice(0, 1) + name.slice(2)
    t.same(misspelledSettings({ [typo]: 'x' }).map(found => found.meant), [name], typo)
  }
})

t.test('the settings themselves and what shells, Node, npm and containers set are left alone', async t => {
  const env = Object.fromEntries(Object.keys(EnvSchema.properties).map(name => [name, 'x']))
  t.same(misspelledSettings({
    ...env,
    PATH: '/usr/bin',
    HOME: '/home/node',
    HOSTNAME: 'a1b2c3',
    USER: 'node',
    TERM: 'xterm',
    PWD: '/app',
    LANG: 'C.UTF-8',
    NODE_ENV: 'production',
    NODE_VERSION: '26.0.0',
    NODE_OPTIONS: '--enable-source-maps',
    npm_config_cache: '/tmp',
    npm_lifecycle_event: 'start',
    NPM_CONFIG_LOGLEVEL: 'warn',
    LC_ALL: 'C',
    HTTP_PROXY: 'http://proxy:3128',
    HTTPS_PROXY: 'http://proxy:3128',
    NO_PROXY: 'localhost',
    DB_PASSWORD: 'postgres',
    UPLOAD_LOCATION: './library',
    IMMICH_VERSION: 'release',
    access_key: 'lower case is not how settings are written'
  }), [])
})
