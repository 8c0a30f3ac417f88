// @ts-check
// The playground page's script: plain browser JavaScript, type-checked by tsc (JSDoc types,
// tsconfig.json) and linted by eslint, inlined into page.html at boot by plugins/playground.ts.
// It speaks the protocol directly with the browser's WebSocket. Received text is only
// ever set with textContent, never as HTML.
'use strict'

/** @typedef {import('../playground.js').PlaygroundRoute} Route */
/** @typedef {Route['actions'][number]} Action */

/** @type {Route[]} */
let routes = []
let panelCount = 0

/** @param {string} id */
function byId (id) {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`the page has no #${id}`)
  return node
}

/**
 * An element with attributes (`text` sets textContent, `className` the class) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attrs]
 * @param {Node[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el (tag, attrs = {}, children = []) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') node.textContent = v
    else if (k === 'className') node.className = v
    else node.setAttribute(k, v)
  }
  for (const c of children) node.appendChild(c)
  return node
}

function now () {
  const d = new Date()
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0')
}

/**
 * A value that passes the schema's shape, for the editor to start from.
 * @param {any} schema a JSON Schema
 * @returns {unknown}
 */
function skeleton (schema) {
  if (!schema || typeof schema !== 'object') return {}
  if ('default' in schema) return schema.default
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0]
  const alt = schema.anyOf || schema.oneOf
  if (Array.isArray(alt) && alt.length) return skeleton(alt[0])
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  if (type === 'object' || schema.properties) {
    /** @type {Record<string, unknown>} */
    const out = {}
    for (const k of Object.keys(schema.properties || {})) out[k] = skeleton(schema.properties[k])
    return out
  }
  if (type === 'array') return []
  if (type === 'string') return ''
  if (type === 'integer' || type === 'number') return typeof schema.minimum === 'number' ? schema.minimum : 0
  if (type === 'boolean') return false
  if (type === 'null') return null
  return {}
}

/** One connection: route and params, token, action editor and a log of frames. */
function Panel () {
  const n = ++panelCount
  /** @type {WebSocket | null} */
  let ws = null
  let nextId = 1
  let token = ''
  const root = el('section', { className: 'panel', 'data-panel': String(n) })
  const status = el('span', { className: 'status', text: 'idle' })
  const closeBtn = el('button', { text: '\u2715', title: 'remove this connection' })
  root.appendChild(el('h2', {}, [el('span', { text: 'Connection ' + n }), el('span', {}, [status, document.createTextNode(' '), closeBtn])]))

  const routeSel = el('select', { 'aria-label': 'route' })
  routes.forEach((r, i) => { routeSel.appendChild(el('option', { value: String(i), text: r.url })) })
  const paramsRow = el('span', { className: 'row' })
  root.appendChild(el('div', { className: 'row' }, [el('label', { text: 'route' }), routeSel, paramsRow]))

  const tokenInput = el('input', { className: 'token', type: 'password', placeholder: 'token (sent in-band with socket.authorize)', autocomplete: 'off', 'aria-label': 'token' })
  const connectBtn = el('button', { className: 'primary', text: 'Connect' })
  const disconnectBtn = el('button', { text: 'Disconnect', disabled: '' })
  root.appendChild(el('div', { className: 'row' }, [tokenInput, connectBtn, disconnectBtn]))
  const authNote = el('div', { className: 'summary' })
  root.appendChild(authNote)

  const actionSel = el('select', { 'aria-label': 'action' })
  const sendBtn = el('button', { className: 'primary', text: 'Send', disabled: '' })
  root.appendChild(el('div', { className: 'row' }, [el('label', { text: 'action' }), actionSel, sendBtn]))
  const summary = el('div', { className: 'summary' })
  root.appendChild(summary)
  const editor = el('textarea', { spellcheck: 'false', 'aria-label': 'data' })
  root.appendChild(editor)
  const log = el('ol', { className: 'log', 'aria-label': 'frames' })
  root.appendChild(log)

  /** @returns {Route | undefined} */
  const route = () => routes[Number(routeSel.value)]
  /** @returns {Action | undefined} */
  const selectedAction = () => route()?.actions[Number(actionSel.value)]

  /**
   * @param {'out' | 'in' | 'err' | 'sys'} kind
   * @param {string} text
   */
  function addLog (kind, text) {
    const li = el('li', { className: kind }, [el('span', { className: 't', text: now() + ' ' }), el('span', { text })])
    log.appendChild(li)
    log.scrollTop = log.scrollHeight
  }

  /**
   * @param {string} text
   * @param {string} [cls]
   */
  function setStatus (text, cls) {
    status.textContent = text
    status.className = 'status ' + (cls || '')
  }

  function renderRoute () {
    const r = route()
    paramsRow.textContent = ''
    if (!r) return
    for (const p of r.params) {
      const pattern = p.schema && typeof p.schema.pattern === 'string' ? p.schema.pattern : ''
      paramsRow.appendChild(el('input', { 'data-param': p.name, placeholder: p.name, title: pattern, value: p.name === 'room' ? 'general' : '', size: '12' }))
    }
    authNote.textContent = (r.auth.upgrade ? 'auth at the upgrade (Authorization header, which a browser page cannot set)' : 'no upgrade auth') +
      (r.auth.handshake ? '; in-band handshake: the token is sent with socket.authorize after socket.handshake' : '; no in-band handshake (this page cannot set headers)') +
      (r.events.length ? '; events: ' + r.events.join(', ') : '') +
      (r.channels.length ? '; channels: ' + r.channels.map((c) => c.name).join(', ') : '')
    actionSel.textContent = ''
    r.actions.forEach((a, i) => {
      actionSel.appendChild(el('option', { value: String(i), text: a.name + (a.public ? '  (public)' : '') }))
    })
    renderAction()
  }

  function renderAction () {
    const a = selectedAction()
    if (!a) return
    summary.textContent = (a.summary || '') + (a.public ? '  [public: allowed before authentication]' : '')
    editor.value = JSON.stringify(skeleton(a.request), null, 2)
  }

  function url () {
    const path = (route()?.url ?? '').replace(/:([A-Za-z0-9_]+)/g, (_m, name) => {
      /** @type {HTMLInputElement | null} */
      const input = paramsRow.querySelector(`[data-param="${name}"]`)
      return encodeURIComponent(input ? input.value : '')
    })
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path
  }

  /** @param {{ id: string | number, action: string, data: unknown }} obj */
  function send (obj) {
    if (ws === null) return
    const text = JSON.stringify(obj)
    ws.send(text)
    // the token is never shown in the log
    addLog('out', '\u2192 ' + (obj.action === 'socket.authorize' ? JSON.stringify({ id: obj.id, action: obj.action, data: { token: '***' } }) : text))
  }

  connectBtn.addEventListener('click', () => {
    token = tokenInput.value.trim()
    const target = url()
    setStatus('connecting', '')
    addLog('sys', 'connecting to ' + target)
    const socket = new WebSocket(target)
    ws = socket
    connectBtn.disabled = true
    disconnectBtn.disabled = false
    socket.onopen = () => { setStatus('open', 'open'); sendBtn.disabled = false; addLog('sys', 'open') }
    socket.onmessage = (ev) => {
      let frame = null
      try { frame = JSON.parse(ev.data) } catch { frame = null }
      const isError = frame && frame.ok === false
      addLog(isError ? 'err' : 'in', '\u2190 ' + ev.data)
      if (frame && frame.action === 'socket.handshake') {
        if (token) send({ id: 'auth-' + (nextId++), action: 'socket.authorize', data: { token } })
        else addLog('sys', 'no token: only public actions will answer')
      }
      if (frame && frame.action === 'socket.authorized') setStatus('authenticated', 'open')
      if (frame && frame.action === 'socket.expired' && token) addLog('sys', 'token expired; paste a new one and reconnect, or send socket.authorize')
    }
    socket.onerror = () => { addLog('err', 'socket error') }
    socket.onclose = (ev) => {
      setStatus('closed ' + ev.code, 'closed')
      addLog('sys', 'closed: code ' + ev.code + (ev.reason ? ' reason "' + ev.reason + '"' : ''))
      connectBtn.disabled = false
      disconnectBtn.disabled = true
      sendBtn.disabled = true
      ws = null
    }
  })

  disconnectBtn.addEventListener('click', () => { if (ws) ws.close(1000) })
  closeBtn.addEventListener('click', () => { if (ws) ws.close(1000); root.remove() })
  routeSel.addEventListener('change', renderRoute)
  actionSel.addEventListener('change', renderAction)
  sendBtn.addEventListener('click', () => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return
    /** @type {unknown} */
    let data
    try {
      data = JSON.parse(editor.value || '{}')
    } catch (e) {
      addLog('err', 'the editor does not hold valid JSON: ' + (e instanceof Error ? e.message : String(e)))
      return
    }
    const a = selectedAction()
    if (a) send({ id: nextId++, action: a.name, data })
  })

  renderRoute()
  byId('panels').appendChild(root)
  return root
}

byId('new-connection').addEventListener('click', () => { Panel() })
fetch(document.body.getAttribute('data-routes') ?? '', { headers: { accept: 'application/json' } })
  .then((res) => { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json() })
  .then((body) => {
    routes = body.routes
    byId('route-count').textContent = routes.length + ' route(s)'
    Panel()
  })
  .catch((err) => { byId('route-count').textContent = 'could not load routes: ' + err.message })
