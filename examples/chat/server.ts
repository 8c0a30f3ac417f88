// `npm run demo`: builds the demo and listens; SIGTERM/SIGINT drain every connection with 1001.
//
// The signal often arrives more than once: a Ctrl-C in a terminal, or a supervisor that
// signals the process group, reaches npm, sh, tsx and node alike, and tsx relays it to node
// again. The handler stays installed (a `once` handler would leave the second signal to the
// default action, which kills the process mid-drain and leaves clients with 1006): repeats
// are logged and ignored, and the drain is bounded by its own deadline instead.
import { buildDemo } from './app.js'
import { readSettings } from './settings.js'

/**
 * The drain takes at most shutdown.graceMs + shutdown.windowMs + a 0.5 s close-handshake
 * wait (6.5 s with the demo's defaults), then Redis connections close with bounded waits;
 * past this deadline the process gives up and exits 1.
 */
const DRAIN_DEADLINE_MS = 12_000

const settings = readSettings()
const app = await buildDemo()
await app.listen({ port: settings.port, host: settings.host })

let draining = false
function onSignal (signal: NodeJS.Signals): void {
  if (draining) {
    app.log.info({ signal }, 'already draining connections; the repeated signal is ignored')
    return
  }
  draining = true
  app.log.info({ signal }, 'draining connections')
  setTimeout(() => {
    app.log.error({ deadlineMs: DRAIN_DEADLINE_MS }, 'the drain did not finish in time; exiting')
    process.exit(1)
  }, DRAIN_DEADLINE_MS).unref()
  app.close().then(() => process.exit(0), (err: unknown) => {
    app.log.error({ err }, 'shutdown failed')
    process.exit(1)
  })
}
process.on('SIGTERM', onSignal)
process.on('SIGINT', onSignal)
