/* global uPlot */
// The ML-IDS dashboard: live counts from the notification stream, a per-second chart, the latest
// attacks with their score and top SHAP contributions, the model and the service's health.
// Served by the service itself (no external assets); talks only to the service's own origin.
'use strict'

;(function () {
  const WINDOW_SECONDS = 300
  const TABLE_ROWS = 50
  // Explained per tick at most: the table's newest rows, so the cost stays bounded whatever the rate.
  const EXPLAIN_PER_TICK = 10
  const KEY_STORAGE = 'ml-ids-api-key'
  const KEY_FIELDS = ['src_ip', 'src_port', 'dst_ip', 'dst_port', 'protocol', 'timestamp', 'flow_duration', 'tot_fwd_pkts', 'tot_bwd_pkts']

  const $ = (id) => document.getElementById(id)
  const numberFormat = new Intl.NumberFormat('en')

  let apiKey = sessionStorage.getItem(KEY_STORAGE) || ''
  let streamAbort = null
  let explanations = 'unknown' // 'unknown' | 'on' | 'off'

  const totals = { flows: 0, attacks: 0, unfamiliar: 0 }
  // Per-second buckets: counts of the current second, and the last WINDOW_SECONDS seconds for the chart.
  let current = { second: Math.floor(Date.now() / 1000), flows: 0, attacks: 0 }
  const times = []
  const flowSeries = []
  const attackSeries = []
  // The newest attacks, newest first: raw event data until shown, then parsed rows.
  let pendingAttacks = []
  const rows = []
  // Benign flows the unfamiliar-flow detector flagged (messages with attribute unfamiliar=true), newest first.
  let pendingUnfamiliar = []
  const unfamiliarRows = []
  let dirty = true

  function headers (extra) {
    const h = Object.assign({}, extra)
    if (apiKey) h.authorization = 'Bearer ' + apiKey
    return h
  }

  function setBadge (id, state, text) {
    const el = $(id)
    el.dataset.state = state
    el.textContent = text
  }

  class KeyRequired extends Error {}

  async function api (path, init) {
    const res = await fetch(path, Object.assign({ cache: 'no-store' }, init, { headers: headers(init && init.headers) }))
    if (res.status === 401) throw new KeyRequired(apiKey ? 'unknown API key' : '')
    return res
  }

  // --- API key ---------------------------------------------------------------------------------
  function askForKey (message) {
    if (streamAbort) streamAbort.abort()
    setBadge('connection', 'key', 'API key needed')
    $('key-form').hidden = false
    $('key-error').textContent = message || ''
    $('key-input').focus()
  }

  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault()
    apiKey = $('key-input').value.trim()
    sessionStorage.setItem(KEY_STORAGE, apiKey)
    $('key-input').value = ''
    $('key-form').hidden = true
    start()
  })

  // --- Model and health ------------------------------------------------------------------------
  async function loadModel () {
    const res = await api('/api/model')
    if (!res.ok) throw new Error('GET /api/model: ' + res.status)
    const model = await res.json()
    const threshold = model.threshold === undefined ? '' : ', threshold ' + model.threshold
    $('model').textContent = 'model: ' + model.name + (model.version ? ' ' + model.version : '') + ' (' + model.backend + threshold + ')'
    explanations = model.backend === 'local' ? 'on' : 'off'
    if (explanations === 'off') $('table-note').textContent = 'scores and top features need the embedded model'
    const stats = await api('/api/notifications/stats')
    if (stats.ok) {
      const mode = (await stats.json()).mode
      const note = $('notify-note')
      note.hidden = mode === 'all'
      if (mode === 'attacks') note.textContent = 'NOTIFY=attacks: the service streams attacks only, so flow counts include attacks only.'
      if (mode === 'unfamiliar') note.textContent = 'NOTIFY=unfamiliar: the service streams attacks and unfamiliar benign flows only, so flow counts include those only.'
      if (mode === 'none') note.textContent = 'NOTIFY=none: the service streams no notifications.'
    }
  }

  async function checkHealth () {
    try {
      const res = await fetch('/ready', { cache: 'no-store' })
      const body = await res.json()
      setBadge('health', body.status === 'ok' ? 'ok' : 'unavailable', 'health: ' + body.status + (body.reason ? ' (' + body.reason + ')' : ''))
    } catch (err) {
      setBadge('health', 'error', 'health: unreachable')
    }
  }

  // --- The event stream ------------------------------------------------------------------------
  const ATTRIBUTES = '"attributes":{"prediction":"'
  const ROWS = /"rows":"(\d+)"/

  /**
   * One `data:` payload: counted at once; attacks kept raw, parsed only if shown. A message carries one
   * flow (NOTIFY_GROUPING=row) or a request's flows of one class, counted by its `rows` attribute.
   */
  function onEvent (data) {
    const at = data.lastIndexOf(ATTRIBUTES)
    if (at === -1) return
    const attack = data.startsWith('attack', at + ATTRIBUTES.length)
    const count = Number(ROWS.exec(data.slice(at))?.[1] ?? 1)
    const second = Math.floor(Date.now() / 1000)
    if (second !== current.second) rollTo(second)
    current.flows += count
    totals.flows += count
    if (attack) {
      current.attacks += count
      totals.attacks += count
      pendingAttacks.push({ data, time: Date.now() })
      if (pendingAttacks.length > TABLE_ROWS * 2) pendingAttacks = pendingAttacks.slice(-TABLE_ROWS)
    } else if (data.includes('"unfamiliar":"true"', at)) {
      totals.unfamiliar += count
      pendingUnfamiliar.push({ data, time: Date.now() })
      if (pendingUnfamiliar.length > TABLE_ROWS * 2) pendingUnfamiliar = pendingUnfamiliar.slice(-TABLE_ROWS)
    }
    dirty = true
  }

  /** Splits a chunk of the stream into events; returns what is left of an unfinished one. */
  function parseEvents (buffer) {
    let start = 0
    for (;;) {
      const end = buffer.indexOf('\n\n', start)
      if (end === -1) break
      const block = buffer.slice(start, end)
      start = end + 2
      if (block.startsWith(':')) continue // a comment: subscribed, keep-alive
      const at = block.startsWith('data: ') ? 0 : block.indexOf('\ndata: ') + 1
      if (at > 0 || block.startsWith('data: ')) onEvent(block.slice(at + 6))
    }
    return buffer.slice(start)
  }

  async function stream () {
    let delay = 1000
    for (;;) {
      streamAbort = new AbortController()
      try {
        const res = await api('/api/notifications?include=all', { signal: streamAbort.signal, headers: { accept: 'text/event-stream' } })
        if (!res.ok || !res.body) throw new Error('GET /api/notifications: ' + res.status)
        setBadge('connection', 'live', 'live')
        delay = 1000
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer = parseEvents(buffer + value)
        }
      } catch (err) {
        if (err instanceof KeyRequired) return askForKey(err.message)
        if (err.name === 'AbortError') return
      }
      setBadge('connection', 'error', 'disconnected: retrying')
      await new Promise(resolve => setTimeout(resolve, delay))
      delay = Math.min(delay * 2, 30000)
    }
  }

  // --- Aggregation and rendering ---------------------------------------------------------------
  function rollTo (second) {
    // Close the current second and any silent seconds since, as zeros.
    for (let s = current.second; s < second && s > second - WINDOW_SECONDS - 1; s++) {
      const own = s === current.second
      times.push(s)
      flowSeries.push(own ? current.flows : 0)
      attackSeries.push(own ? current.attacks : 0)
    }
    while (times.length > WINDOW_SECONDS) {
      times.shift()
      flowSeries.shift()
      attackSeries.shift()
    }
    current = { second, flows: 0, attacks: 0 }
    dirty = true
  }

  let chart = null
  function makeChart () {
    const el = $('chart')
    chart = new uPlot({ // eslint-disable-line new-cap
      width: Math.max(el.clientWidth, 300),
      height: 260,
      // The last WINDOW_SECONDS seconds, whatever the data: a steady time axis from the first point on.
      scales: { x: { time: true, range: () => [current.second - WINDOW_SECONDS, current.second] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      legend: { live: false },
      series: [
        {},
        { label: 'flows/s', stroke: '#2f6fdb', fill: 'rgba(47,111,219,0.08)', width: 2 },
        { label: 'attacks/s', stroke: '#d2352b', fill: 'rgba(210,53,43,0.10)', width: 2 },
      ],
      axes: [{}, { size: 60 }],
    }, [[], [], []], el)
    window.addEventListener('resize', () => chart.setSize({ width: Math.max(el.clientWidth, 300), height: 260 }))
  }

  function keyFields (frame) {
    const columns = frame.columns
    const row = frame.data[0]
    const parts = []
    for (const field of KEY_FIELDS) {
      const i = columns.indexOf(field)
      if (i !== -1 && row[i] !== null && row[i] !== undefined) parts.push(field + ' ' + row[i])
    }
    return parts.join(' · ')
  }

  /** The table rows of one attack message, newest (last in the message) first. */
  function parseAttack (pending) {
    try {
      const event = JSON.parse(pending.data)
      const { columns, data } = event.message
      const out = []
      for (let i = data.length - 1; i >= 0 && out.length < TABLE_ROWS; i--) {
        const frame = { columns, data: [data[i]] }
        out.push({ time: pending.time, requestId: event.attributes.request_id, frame, flow: keyFields(frame), score: null, top: null })
      }
      return out
    } catch (err) {
      return []
    }
  }

  function renderTable () {
    const body = $('attacks').tBodies[0]
    const fragment = document.createDocumentFragment()
    for (const row of rows) {
      const tr = document.createElement('tr')
      const cells = [new Date(row.time).toLocaleTimeString([], { hour12: false }), row.requestId, row.flow, row.score === null ? '–' : row.score.toFixed(3)]
      const classes = ['time', 'id', 'flow', 'score']
      cells.forEach((text, i) => {
        const td = document.createElement('td')
        td.className = classes[i]
        td.textContent = text
        tr.appendChild(td)
      })
      const features = document.createElement('td')
      features.className = 'features'
      if (row.top === null) {
        features.textContent = '–'
      } else {
        for (const [name, value] of row.top) {
          const span = document.createElement('span')
          span.className = 'feature'
          const sign = document.createElement('span')
          sign.className = value >= 0 ? 'up' : 'down'
          sign.textContent = (value >= 0 ? '+' : '') + value.toFixed(2)
          span.append(name + ' ', sign)
          features.appendChild(span)
        }
      }
      tr.appendChild(features)
      fragment.appendChild(tr)
    }
    body.replaceChildren(fragment)
    $('no-attacks').hidden = rows.length > 0
  }

  function render () {
    const second = Math.floor(Date.now() / 1000)
    if (second !== current.second) rollTo(second)
    if (!dirty && chart) return
    dirty = false
    $('total-flows').textContent = numberFormat.format(totals.flows)
    $('total-attacks').textContent = numberFormat.format(totals.attacks)
    $('attack-share').textContent = totals.flows === 0 ? '–' : (100 * totals.attacks / totals.flows).toFixed(1) + ' %'
    $('rate-now').textContent = numberFormat.format(flowSeries.length ? flowSeries[flowSeries.length - 1] : 0)
    if (pendingAttacks.length > 0) {
      const fresh = pendingAttacks.slice(-TABLE_ROWS).reverse().flatMap(parseAttack).slice(0, TABLE_ROWS)
      pendingAttacks = []
      rows.unshift(...fresh)
      rows.length = Math.min(rows.length, TABLE_ROWS)
      renderTable()
    }
    $('total-unfamiliar').textContent = numberFormat.format(totals.unfamiliar)
    if (pendingUnfamiliar.length > 0) {
      const fresh = pendingUnfamiliar.slice(-TABLE_ROWS).reverse().flatMap(parseAttack).slice(0, TABLE_ROWS)
      pendingUnfamiliar = []
      unfamiliarRows.unshift(...fresh)
      unfamiliarRows.length = Math.min(unfamiliarRows.length, TABLE_ROWS)
      renderUnfamiliar()
    }
    if (chart) chart.setData([times, flowSeries, attackSeries])
  }

  function renderUnfamiliar () {
    const fragment = document.createDocumentFragment()
    for (const row of unfamiliarRows) {
      const tr = document.createElement('tr')
      const cells = [new Date(row.time).toLocaleTimeString([], { hour12: false }), row.requestId, row.flow]
      const classes = ['time', 'id', 'flow']
      cells.forEach((text, i) => {
        const td = document.createElement('td')
        td.className = classes[i]
        td.textContent = text
        tr.appendChild(td)
      })
      fragment.appendChild(tr)
    }
    $('unfamiliar').tBodies[0].replaceChildren(fragment)
    $('no-unfamiliar').hidden = unfamiliarRows.length > 0
  }

  /** Scores and top features of the newest shown attacks, from POST /api/explanations?top=3. */
  let explaining = false
  async function explainNewest () {
    if (explanations !== 'on' || explaining) return
    const todo = rows.filter(row => row.top === null && !row.explaining).slice(0, EXPLAIN_PER_TICK)
    if (todo.length === 0) return
    explaining = true
    try {
      // Rows of one request share columns: one call per distinct column list.
      const groups = new Map()
      for (const row of todo) {
        row.explaining = true
        const key = JSON.stringify(row.frame.columns)
        if (!groups.has(key)) groups.set(key, [])
        groups.get(key).push(row)
      }
      for (const group of groups.values()) {
        const body = JSON.stringify({ columns: group[0].frame.columns, data: group.map(row => row.frame.data[0]) })
        const res = await api('/api/explanations?top=3', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        if (res.status === 501) {
          explanations = 'off'
          $('table-note').textContent = 'scores and top features need the embedded model'
          return
        }
        if (!res.ok) continue
        const answer = await res.json()
        group.forEach((row, i) => {
          row.score = answer[i].score
          row.top = Object.entries(answer[i].contributions)
        })
        renderTable()
      }
    } catch (err) {
      if (err instanceof KeyRequired) askForKey(err.message)
    } finally {
      explaining = false
    }
  }

  async function start () {
    setBadge('connection', 'connecting', 'connecting')
    try {
      await loadModel()
    } catch (err) {
      if (err instanceof KeyRequired) return askForKey(err.message)
      setBadge('connection', 'error', 'cannot reach the API')
      setTimeout(start, 5000)
      return
    }
    stream()
  }

  // Without the chart (its script failed to load) the counts and the table still work.
  try {
    makeChart()
  } catch (err) {
    $('chart').textContent = 'The chart could not be drawn: ' + err.message
  }
  setInterval(render, 250)
  setInterval(explainNewest, 1000)
  setInterval(checkHealth, 5000)
  checkHealth()
  start()
})()
