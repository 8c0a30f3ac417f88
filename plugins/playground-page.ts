// The playground page: plain HTML, CSS and browser JavaScript in one string, so the
// package needs no asset copying and the browser no CDN. The script speaks the protocol
// directly with the browser's WebSocket. Received text is only ever set with textContent.
// (The script below avoids backticks and dollar-brace on purpose: it lives in a template.)

const css = `
*{box-sizing:border-box}body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{display:flex;gap:12px;align-items:center;padding:10px 16px;background:#1d2330;color:#fff}
header h1{font-size:16px;margin:0;font-weight:600}header .hint{opacity:.7;font-size:12px;flex:1}
button{font:inherit;padding:4px 10px;border:1px solid #98a1b3;background:#fff;border-radius:4px;cursor:pointer}
button.primary{background:#2f6feb;color:#fff;border-color:#2f6feb}button:disabled{opacity:.5;cursor:default}
#panels{display:flex;flex-wrap:wrap;gap:12px;padding:12px}
.panel{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:10px;width:560px;display:flex;flex-direction:column;gap:6px}
.panel h2{font-size:14px;margin:0;display:flex;justify-content:space-between;align-items:center}
.row{display:flex;gap:6px;align-items:center;flex-wrap:wrap}label{font-size:12px;color:#4b5365}
input,select,textarea{font:12px ui-monospace,monospace;padding:4px;border:1px solid #b8bfcc;border-radius:4px}
input.token{flex:1}textarea{width:100%;height:90px;resize:vertical}
.status{font-size:12px;padding:1px 6px;border-radius:8px;background:#e5e7eb}.status.open{background:#c9f2d4}.status.closed{background:#f8d3d3}
.summary{font-size:12px;color:#4b5365;min-height:16px}.badge{font-size:11px;padding:0 4px;border-radius:3px;background:#fff3c4}
ol.log{list-style:none;margin:0;padding:0;height:260px;overflow:auto;background:#0f1420;color:#d7dae0;border-radius:4px;font:12px ui-monospace,monospace}
ol.log li{padding:2px 6px;border-bottom:1px solid #1d2433;white-space:pre-wrap;word-break:break-all}
ol.log .t{color:#7f8aa3}ol.log .out{color:#8cc8ff}ol.log .in{color:#b6f0b6}ol.log .err{color:#ff9d9d}ol.log .sys{color:#f3d37a}
`

const script = `
'use strict'
var ROUTES_URL = document.body.getAttribute('data-routes')
var routes = []
var panelCount = 0

function el (tag, attrs, children) {
  var node = document.createElement(tag)
  Object.keys(attrs || {}).forEach(function (k) {
    if (k === 'text') node.textContent = attrs[k]
    else if (k === 'className') node.className = attrs[k]
    else node.setAttribute(k, attrs[k])
  })
  ;(children || []).forEach(function (c) { node.appendChild(c) })
  return node
}

function now () {
  var d = new Date()
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0')
}

// A value that passes the schema's shape, for the editor to start from.
function skeleton (schema) {
  if (!schema || typeof schema !== 'object') return {}
  if ('default' in schema) return schema.default
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0]
  var alt = schema.anyOf || schema.oneOf
  if (Array.isArray(alt) && alt.length) return skeleton(alt[0])
  var type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  if (type === 'object' || schema.properties) {
    var out = {}
    Object.keys(schema.properties || {}).forEach(function (k) { out[k] = skeleton(schema.properties[k]) })
    return out
  }
  if (type === 'array') return []
  if (type === 'string') return ''
  if (type === 'integer' || type === 'number') return typeof schema.minimum === 'number' ? schema.minimum : 0
  if (type === 'boolean') return false
  if (type === 'null') return null
  return {}
}

function Panel () {
  var n = ++panelCount
  var ws = null
  var nextId = 1
  var token = ''
  var root = el('section', { className: 'panel', 'data-panel': String(n) })
  var status = el('span', { className: 'status', text: 'idle' })
  var closeBtn = el('button', { text: '\\u2715', title: 'remove this connection' })
  root.appendChild(el('h2', {}, [el('span', { text: 'Connection ' + n }), el('span', {}, [status, document.createTextNode(' '), closeBtn])]))

  var routeSel = el('select', { 'aria-label': 'route' })
  routes.forEach(function (r, i) { routeSel.appendChild(el('option', { value: String(i), text: r.url })) })
  var paramsRow = el('span', { className: 'row' })
  root.appendChild(el('div', { className: 'row' }, [el('label', { text: 'route' }), routeSel, paramsRow]))

  var tokenInput = el('input', { className: 'token', type: 'password', placeholder: 'token (sent in-band with socket.authorize)', autocomplete: 'off', 'aria-label': 'token' })
  var connectBtn = el('button', { className: 'primary', text: 'Connect' })
  var disconnectBtn = el('button', { text: 'Disconnect', disabled: '' })
  root.appendChild(el('div', { className: 'row' }, [tokenInput, connectBtn, disconnectBtn]))
  var authNote = el('div', { className: 'summary' })
  root.appendChild(authNote)

  var actionSel = el('select', { 'aria-label': 'action' })
  var sendBtn = el('button', { className: 'primary', text: 'Send', disabled: '' })
  root.appendChild(el('div', { className: 'row' }, [el('label', { text: 'action' }), actionSel, sendBtn]))
  var summary = el('div', { className: 'summary' })
  root.appendChild(summary)
  var editor = el('textarea', { spellcheck: 'false', 'aria-label': 'data' })
  root.appendChild(editor)
  var log = el('ol', { className: 'log', 'aria-label': 'frames' })
  root.appendChild(log)

  function route () { return routes[Number(routeSel.value)] }

  function addLog (kind, text) {
    var li = el('li', { className: kind }, [el('span', { className: 't', text: now() + ' ' }), el('span', { text: text })])
    log.appendChild(li)
    log.scrollTop = log.scrollHeight
  }

  function setStatus (text, cls) { status.textContent = text; status.className = 'status ' + (cls || '') }

  function renderRoute () {
    var r = route()
    paramsRow.textContent = ''
    if (!r) return
    r.params.forEach(function (p) {
      var pattern = p.schema && p.schema.pattern ? p.schema.pattern : ''
      paramsRow.appendChild(el('input', { 'data-param': p.name, placeholder: p.name, title: pattern, value: p.name === 'room' ? 'general' : '', size: '12' }))
    })
    authNote.textContent = (r.auth.upgrade ? 'auth at the upgrade (Authorization header, which a browser page cannot set)' : 'no upgrade auth') +
      (r.auth.handshake ? '; in-band handshake: the token is sent with socket.authorize after socket.handshake' : '; no in-band handshake (this page cannot set headers)') +
      (r.events.length ? '; events: ' + r.events.join(', ') : '') +
      (r.channels.length ? '; channels: ' + r.channels.map(function (c) { return c.name }).join(', ') : '')
    actionSel.textContent = ''
    r.actions.forEach(function (a, i) {
      actionSel.appendChild(el('option', { value: String(i), text: a.name + (a.public ? '  (public)' : '') }))
    })
    renderAction()
  }

  function renderAction () {
    var a = route().actions[Number(actionSel.value)]
    if (!a) return
    summary.textContent = (a.summary || '') + (a.public ? '  [public: allowed before authentication]' : '')
    editor.value = JSON.stringify(skeleton(a.request), null, 2)
  }

  function url () {
    var path = route().url.replace(/:([A-Za-z0-9_]+)/g, function (_m, name) {
      var input = paramsRow.querySelector('[data-param="' + name + '"]')
      return encodeURIComponent(input ? input.value : '')
    })
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path
  }

  function send (obj) {
    var text = JSON.stringify(obj)
    ws.send(text)
    // the token is never shown in the log
    addLog('out', '\\u2192 ' + (obj.action === 'socket.authorize' ? JSON.stringify({ id: obj.id, action: obj.action, data: { token: '***' } }) : text))
  }

  connectBtn.addEventListener('click', function () {
    token = tokenInput.value.trim()
    var target = url()
    setStatus('connecting', '')
    addLog('sys', 'connecting to ' + target)
    ws = new WebSocket(target)
    connectBtn.disabled = true
    disconnectBtn.disabled = false
    ws.onopen = function () { setStatus('open', 'open'); sendBtn.disabled = false; addLog('sys', 'open') }
    ws.onmessage = function (ev) {
      var frame = null
      try { frame = JSON.parse(ev.data) } catch (e) { frame = null }
      var isError = frame && frame.ok === false
      addLog(isError ? 'err' : 'in', '\\u2190 ' + ev.data)
      if (frame && frame.action === 'socket.handshake') {
        if (token) send({ id: 'auth-' + (nextId++), action: 'socket.authorize', data: { token: token } })
        else addLog('sys', 'no token: only public actions will answer')
      }
      if (frame && frame.action === 'socket.authorized') setStatus('authenticated', 'open')
      if (frame && frame.action === 'socket.expired' && token) addLog('sys', 'token expired; paste a new one and reconnect, or send socket.authorize')
    }
    ws.onerror = function () { addLog('err', 'socket error') }
    ws.onclose = function (ev) {
      setStatus('closed ' + ev.code, 'closed')
      addLog('sys', 'closed: code ' + ev.code + (ev.reason ? ' reason "' + ev.reason + '"' : ''))
      connectBtn.disabled = false
      disconnectBtn.disabled = true
      sendBtn.disabled = true
      ws = null
    }
  })

  disconnectBtn.addEventListener('click', function () { if (ws) ws.close(1000) })
  closeBtn.addEventListener('click', function () { if (ws) ws.close(1000); root.remove() })
  routeSel.addEventListener('change', renderRoute)
  actionSel.addEventListener('change', renderAction)
  sendBtn.addEventListener('click', function () {
    if (!ws || ws.readyState !== 1) return
    var data
    try { data = JSON.parse(editor.value || '{}') } catch (e) { addLog('err', 'the editor does not hold valid JSON: ' + e.message); return }
    var a = route().actions[Number(actionSel.value)]
    send({ id: nextId++, action: a.name, data: data })
  })

  renderRoute()
  document.getElementById('panels').appendChild(root)
  return root
}

document.getElementById('new-connection').addEventListener('click', function () { Panel() })
fetch(ROUTES_URL, { headers: { accept: 'application/json' } })
  .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json() })
  .then(function (body) {
    routes = body.routes
    document.getElementById('route-count').textContent = routes.length + ' route(s)'
    Panel()
  })
  .catch(function (err) { document.getElementById('route-count').textContent = 'could not load routes: ' + err.message })
`

function escapeAttribute (value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
}

/** The whole page; `routesUrl` is where its script fetches the route list. */
export function playgroundHtml (routesUrl: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastify-wsx playground</title>
<style>${css}</style>
</head>
<body data-routes="${escapeAttribute(routesUrl)}">
<header><h1>fastify-wsx playground</h1><span class="hint" id="route-count">loading routes…</span>
<button id="new-connection" class="primary">New connection</button></header>
<main id="panels"></main>
<script>${script}</script>
</body>
</html>
`
}
