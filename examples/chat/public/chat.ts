// The demo's chat page, on the typed client (`fastify-wsx/client`): the server's
// `chatRoute` types every request, reply and event here, with no code generation.
// The demo transpiles this file and client/*.ts for the browser at boot (pages.ts).
// Everything received is rendered with textContent, never as HTML.
import { createClient, WsxClient, WsxClientError } from '../../../client/index.js'
import type { chatRoute } from '../app.js'

type Chat = typeof chatRoute
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T
const state: { client: WsxClient<Chat> | null, user: string, room: string } = { client: null, user: '', room: '' }

function showError (text: string): void { $('error').textContent = text }
function sendButton (): HTMLButtonElement { return $('send').querySelector('button') as HTMLButtonElement }

function addLine (cls: string, user: string, text: string): void {
  const li = document.createElement('li')
  li.className = cls
  if (user) {
    const name = document.createElement('span')
    name.className = 'user'
    name.textContent = user
    li.appendChild(name)
  }
  li.appendChild(document.createTextNode(text))
  $('messages').appendChild(li)
  $('messages').scrollTop = $('messages').scrollHeight
}

/** A protocol error as one plain sentence: detail, retry time, the fields that failed. */
function describeError (err: unknown): string {
  if (!(err instanceof WsxClientError)) return String((err as Error)?.message ?? err)
  let text = err.detail || err.code
  if (err.code === 'throttled' && err.retryAfter !== undefined) text += ` Try again in ${Math.ceil(err.retryAfter)} s.`
  if (err.fields) text += ' ' + Object.entries(err.fields).map(([field, messages]) => `${field || 'data'}: ${messages.join(', ')}`).join('; ')
  return `${text} (${err.code})`
}

async function login (username: string): Promise<string> {
  const res = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username }) })
  const body = await res.json() as { token?: string, message?: string }
  if (!res.ok || !body.token) throw new Error(body.message || `login failed (${res.status})`)
  return body.token
}

function connect (token: string): void {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  // recent: a fresh page shows the room's last messages; after a reconnect the client
  // recovers what was missed by itself (the room keeps a history on the server)
  const client = createClient<Chat>(`${scheme}://${window.location.host}/ws/chat/${encodeURIComponent(state.room)}`, { token, recent: 50 })
  state.client = client
  $('status').textContent = 'connecting…'
  let joined = false
  client.on('authorized', () => {
    $('status').textContent = `connected to room "${state.room}" as ${state.user}`
    sendButton().disabled = false
    // after a reconnect the recovery line says what happened instead
    if (!joined) addLine('system', '', `you joined ${state.room}`)
    joined = true
  })
  client.on('chat.message', (message) => addLine(message.user === state.user ? 'me' : 'them', message.user, message.text))
  client.on('recovery', ({ recovered, from, offset }) => {
    if (recovered) {
      const missed = (offset ?? 0) - (from ?? 0)
      addLine('system', '', missed > 0 ? `reconnected: ${missed} missed message${missed === 1 ? '' : 's'} recovered` : 'reconnected: nothing missed')
    } else {
      addLine('system', '', 'reconnected, but some messages may be missing (older than the room history)')
    }
  })
  client.on('expired', () => showError('Your session expired; join again.'))
  client.on('error', (err) => showError(describeError(err)))
  client.on('close', ({ code, reason, willReconnect }) => {
    sendButton().disabled = true
    $('status').textContent = `disconnected (close code ${code}${reason ? `: ${reason}` : ''})${willReconnect ? ', reconnecting…' : ''}`
    if (code === 4401 || code === 4403 || code === 4408) showError(`The server closed the connection (${code}). Join again.`)
  })
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  showError('')
  const form = new FormData(ev.target as HTMLFormElement)
  try {
    state.user = String(form.get('username'))
    state.room = String(form.get('room'))
    const token = await login(state.user)
    await state.client?.close(1000)
    $('chat').hidden = false
    $('messages').textContent = ''
    connect(token)
  } catch (err) {
    showError(describeError(err))
  }
})

$('send').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const input = (ev.target as HTMLFormElement).elements.namedItem('text') as HTMLInputElement
  if (!state.client) return showError('Not connected.')
  showError('')
  try {
    await state.client.request('chat.send', { text: input.value })
    input.value = ''
  } catch (err) {
    showError(describeError(err))
  }
})

$('leave').addEventListener('click', () => { state.client?.close(1000).catch(() => {}) })
