// Runs a route's strategies on a real Fastify request, the same way at the upgrade and
// in-band, and reports how they ended without answering anything: the caller decides
// (the upgrade decision table: docs/protocol.md#authentication-at-the-upgrade).
//
// In-band, the `socket.authorize` frame becomes a real HTTP request to the route itself,
// made in process with `inject()`: the app's cookie and session plugins, its scope-level
// `onRequest` guards and the route's strategies all run exactly as they do for HTTP, on
// Fastify's own Request object. The route's `preValidation` recognises the request by a
// one-time random marker, runs the strategies and hands the result back here.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { RouteContext } from '../boot/route.js'
import type { WsxHook } from '../../types/route.js'
import { isFault, isHandshakeOnly, runHook, type HookOutcome } from '../fastify/hook-runner.js'
import { createReplyShim, tokenOnlyView } from '../fastify/request-view.js'

export interface AuthResult {
  ok: boolean
  /** what the successful strategy put on `request.user` (true when nothing) */
  user: unknown
  /** the status a refusal answers over HTTP */
  status: number
  /** headers the strategies set (e.g. `WWW-Authenticate`), replayed with a refusal */
  headers: OutgoingHttpHeaders
  /** what a strategy sent, replayed with a refusal */
  payload: unknown
  /** a server-side fault (a strategy crashed or hung), to be logged, not a refused credential */
  fault: unknown
  /** the request's cookies and session after the strategies ran (in-band: kept by the connection) */
  cookies?: unknown
  session?: unknown
}

function statusOf (outcome: HookOutcome): number {
  if (outcome.status !== undefined) return outcome.status >= 400 ? outcome.status : 403
  const status = typeof outcome.error === 'object' && outcome.error !== null ? (outcome.error as { statusCode?: unknown }).statusCode : undefined
  return status === 403 ? 403 : 401
}

/**
 * Tries `strategies` in order on `request` with a capturing reply; the first success wins,
 * a strategy that replied ends the search. Never throws.
 */
export async function runAuthentication (route: RouteContext, request: FastifyRequest, strategies: WsxHook[], opts: { inband: boolean, timeoutMs: number, replyProto?: object }): Promise<AuthResult> {
  const reply = createReplyShim(request, request.log, opts.replyProto) as FastifyReply
  let outcome: HookOutcome = { ok: false, status: 401 }
  let user: unknown
  for (const strategy of strategies) {
    // a handshake-only strategy sees the frame's credential and nothing of the upgrade
    const target = opts.inband && isHandshakeOnly(strategy) ? tokenOnlyView(request, request.headers.authorization) : request
    outcome = await runHook(strategy, route.instance, target, reply, opts.timeoutMs)
    if (outcome.ok) {
      user = (target as { user?: unknown }).user
      break
    }
    if (reply.sent) break
  }
  const shim = reply as unknown as { payload: unknown, capturedHeaders: () => OutgoingHttpHeaders }
  const result: AuthResult = {
    ok: outcome.ok,
    user: user === null || user === undefined ? true : user,
    status: outcome.ok ? 200 : statusOf(outcome),
    headers: shim.capturedHeaders(),
    payload: shim.payload,
    fault: !outcome.ok && isFault(outcome) ? outcome.error ?? new Error(`a strategy threw ${String(outcome.error)}`) : undefined
  }
  const r = request as { cookies?: unknown, session?: unknown }
  if (r.cookies !== undefined) result.cookies = r.cookies
  if (r.session !== undefined && r.session !== null) result.session = r.session
  return result
}

/** The marker header of an in-band request; its value is a one-time random id. */
export const INBAND_HEADER = 'x-wsx-inband'

const pending = new Map<string, (result: AuthResult) => void>()

/**
 * For the route's `preValidation`: the callback awaiting this request's result when it is
 * an in-band request made by `authenticateInBand`, else null. The marker is removed.
 */
export function takeInBandSlot (request: FastifyRequest): ((result: AuthResult) => void) | null {
  const id = request.headers[INBAND_HEADER]
  if (typeof id !== 'string') return null
  const slot = pending.get(id)
  if (slot === undefined) return null
  pending.delete(id)
  delete request.raw.headers[INBAND_HEADER]
  return slot
}

function refused (status: number, fault?: unknown): AuthResult {
  return { ok: false, user: undefined, status, headers: {}, payload: undefined, fault }
}

export interface InBandRequest {
  url: string
  ip: string
  headers: IncomingHttpHeaders
}

/**
 * Runs the route's strategies on the HTTP request equivalent to a `socket.authorize`.
 * Resolves a refusal when an app hook answered first (a scope guard), when the request
 * failed, or after `timeoutMs`. Never rejects.
 */
export function authenticateInBand (instance: FastifyInstance, req: InBandRequest, timeoutMs: number): Promise<AuthResult> {
  const id = randomBytes(16).toString('hex')
  return new Promise<AuthResult>((resolve) => {
    let settled = false
    const settle = (result: AuthResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      pending.delete(id)
      resolve(result)
    }
    const timer = setTimeout(() => settle(refused(401, new Error(`in-band authentication did not finish within ${timeoutMs} ms`))), timeoutMs)
    timer.unref()
    pending.set(id, settle)
    instance.inject({ method: 'GET', url: req.url, headers: { ...req.headers, [INBAND_HEADER]: id }, remoteAddress: req.ip })
      .then((res) => {
        // our preValidation settled first when it ran; otherwise an app hook answered
        const status = res.statusCode >= 400 ? res.statusCode : 403
        settle(refused(status, status >= 500 ? new Error(`in-band authentication request answered ${res.statusCode}`) : undefined))
      }, (err: unknown) => settle(refused(401, err)))
  })
}
