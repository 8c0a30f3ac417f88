// The wire vocabulary of the protocol in one place: built-in actions, error codes,
// close codes and the subprotocol. Nothing else in the code spells these strings.
// The server and the browser client (client/) both import it: it imports nothing, and
// nothing here may need Node or Fastify.

export const SUBPROTOCOL = 'wsx.v1'
/** The same envelope as MessagePack in binary frames; only on routes that opt in (`msgpack: true`). */
export const MSGPACK_SUBPROTOCOL = 'wsx.v1.msgpack'

/**
 * msgpackr's settings for `wsx.v1.msgpack`, on both sides: plain MessagePack any decoder
 * reads (no records, no msgpackr extensions); 64-bit integers become numbers, as in JSON.
 */
export const MSGPACK_OPTIONS = {
  pack: { useRecords: false, variableMapSize: true },
  unpack: { useRecords: false, mapsAsObjects: true, int64AsType: 'number' }
} as const

/** Built-in actions, always available and allowed before authentication. */
export const BuiltinAction = {
  authorize: 'socket.authorize',
  ping: 'socket.ping',
  subscribe: 'channel.subscribe',
  unsubscribe: 'channel.unsubscribe',
  recover: 'group.recover'
} as const

/** The credential fields `socket.authorize` may carry (README, Authentication). */
export const AUTHORIZE_FIELDS = ['token', 'username', 'password', 'api_key', 'session_id'] as const

/** Frames the server sends outside replies. */
export const ServerEvent = {
  handshake: 'socket.handshake',
  authorized: 'socket.authorized',
  expired: 'socket.expired',
  resync: 'socket.resync',
  groupJoined: 'group.joined',
  presenceJoin: 'presence.join',
  presenceLeave: 'presence.leave'
} as const

/** Error codes of the protocol (docs/protocol.md#error-codes), named as Django REST Framework names them. */
export const ErrorCode = {
  parse: 'parse_error',
  notAuthenticated: 'not_authenticated',
  authenticationFailed: 'authentication_failed',
  locked: 'locked',
  permissionDenied: 'permission_denied',
  notFound: 'not_found',
  throttled: 'throttled',
  validation: 'validation_error',
  server: 'server_error'
} as const
// eslint-disable-next-line @typescript-eslint/no-redeclare -- a value and its type, one name
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/** Close codes of the protocol (docs/protocol.md#close-codes). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  badFrame: 4400,
  notAuthenticated: 4401,
  forbidden: 4403,
  lockedOut: 4408,
  tooManyMessages: 4429
} as const
// eslint-disable-next-line @typescript-eslint/no-redeclare -- a value and its type, one name
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

/** `readyState` of a WebSocket, the same numbers in browsers and in ws. */
export const ReadyState = {
  connecting: 0,
  open: 1,
  closing: 2,
  closed: 3
} as const

/** Generic details: what a client may read. Never an internal message. */
export const Detail = {
  parse_error: 'Malformed request.',
  not_authenticated: 'Authentication credentials were not provided.',
  authentication_failed: 'Invalid token.',
  locked: 'Too many failed attempts; try again later.',
  permission_denied: 'You do not have permission to perform this action.',
  not_found: 'Unknown action.',
  throttled: 'Request was throttled.',
  validation_error: 'Invalid input.',
  server_error: 'A server error occurred.'
} as const satisfies Record<ErrorCode, string>

/** action: dotted parts of [A-Za-z0-9_], at most 128 characters (docs/protocol.md#requests). */
export const ACTION_PATTERN = /^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$/
export const MAX_ACTION_LENGTH = 128
export const MAX_ID_LENGTH = 128
export const MAX_TRACE_ID_LENGTH = 128

/** Group names: no mqemitter (`+`, `#`, `/`) or Redis glob (`*?[]\`) characters can pass. */
export const GROUP_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/
