// `npm run demo`: builds the demo and listens; SIGTERM/SIGINT drain connections with 1001.
import { buildDemo } from './app.js'
import { readSettings } from './settings.js'

const settings = readSettings()
const app = await buildDemo()
await app.listen({ port: settings.port, host: settings.host })

let closing = false
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'draining connections')
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  })
}
