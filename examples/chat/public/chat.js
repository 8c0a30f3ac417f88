// The demo's chat page. It speaks PROTOCOL.md directly with the browser's WebSocket:
// POST /login for a token, connect to /ws/chat/<room>, answer socket.handshake with
// socket.authorize, then send chat.send requests and show chat.message events.
// Everything received is rendered with textContent, never as HTML.
'use strict'

const $ = (id) => document.getElementById(id)
const state = { ws: null, token: null, user: null, room: null, nextId: 1, pending: new Map() }

function showError (text) { $('error').textContent = text }

function addLine (cls, user, text) {
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

/** A protocol error reply as one plain sentence: code, detail, and the fields that matter. */
function describeError (error) {
  let text = error.detail || error.code
  if (error.code === 'throttled' && error.retry_after !== undefined) text += ` Try again in ${Math.ceil(error.retry_after)} s.`
  if (error.fields) {
    text += ' ' + Object.entries(error.fields).map(([field, messages]) => `${field || 'data'}: ${messages.join(', ')}`).join('; ')
  }
  return `${text} (${error.code})`
}

/** Sends a request and resolves its reply frame (ok or not). */
function request (action, data) {
  const id = state.nextId++
  state.ws.send(JSON.stringify({ id, action, data }))
  return new Promise((resolve) => state.pending.set(id, resolve))
}

function onFrame (frame) {
  if (frame.id !== undefined && frame.id !== null && state.pending.has(frame.id) && 'ok' in frame) {
    const resolve = state.pending.get(frame.id)
    state.pending.delete(frame.id)
    resolve(frame)
    return
  }
  switch (frame.action) {
    case 'socket.handshake':
      state.ws.send(JSON.stringify({ id: 'auth', action: 'socket.authorize', data: { token: state.token } }))
      break
    case 'socket.authorized':
      $('status').textContent = `connected to room "${state.room}" as ${state.user}`
      $('send').querySelector('button').disabled = false
      addLine('system', '', `you joined ${state.room}`)
      break
    case 'socket.expired':
      showError('Your session expired; join again.')
      break
    case 'chat.message':
      addLine(frame.data.user === state.user ? 'me' : 'them', frame.data.user, frame.data.text)
      break
    default:
      if (frame.ok === false) showError(describeError(frame.error))
  }
}

async function login (username) {
  const res = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username }) })
  const body = await res.json()
  if (!res.ok) throw new Error(body.message || `login failed (${res.status})`)
  return body.token
}

function connect () {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  const ws = new WebSocket(`${scheme}://${window.location.host}/ws/chat/${encodeURIComponent(state.room)}`)
  state.ws = ws
  $('status').textContent = 'connecting…'
  ws.onmessage = (ev) => {
    let frame
    try { frame = JSON.parse(ev.data) } catch { return }
    onFrame(frame)
  }
  ws.onclose = (ev) => {
    $('send').querySelector('button').disabled = true
    $('status').textContent = `disconnected (close code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`
    if (ev.code === 4401 || ev.code === 4403 || ev.code === 4408) showError(`The server closed the connection (${ev.code}). Join again.`)
    for (const resolve of state.pending.values()) resolve({ ok: false, error: { code: 'closed', detail: 'Connection closed.' } })
    state.pending.clear()
    if (state.ws === ws) state.ws = null
  }
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  showError('')
  const form = new FormData(ev.target)
  try {
    state.user = String(form.get('username'))
    state.room = String(form.get('room'))
    state.token = await login(state.user)
    if (state.ws) state.ws.close(1000)
    $('chat').hidden = false
    $('messages').textContent = ''
    connect()
  } catch (err) {
    showError(err.message)
  }
})

$('send').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const input = ev.target.elements.text
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return showError('Not connected.')
  showError('')
  const reply = await request('chat.send', { text: input.value })
  if (reply.ok) input.value = ''
  else showError(describeError(reply.error))
})

$('leave').addEventListener('click', () => { if (state.ws) state.ws.close(1000) })
