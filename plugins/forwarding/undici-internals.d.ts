// Types for the undici files plugins/forwarding/ imports by path: undici declares types
// for its index only. They are the index's own exports (test/undici-internals.test.ts checks).
declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici'
  export default Pool
}

declare module 'undici/lib/core/util.js' {
  import { util } from 'undici'
  export const headerNameToString: typeof util.headerNameToString
}

declare module 'undici/lib/dispatcher/dispatcher.js' {
  import { Dispatcher } from 'undici'
  export default Dispatcher
}
