/* global uPlot */
// The ML-IDS dashboard: live counts from the notification stream, a per-second chart, the latest
// attacks with their score and top SHAP contributions, the model and the service's health.
// Served by the service itself (no external assets); talks only to the service's own origin.
'use strict'

;(function () {
  const WINDOW_SECONDS = 300
  const TABLE_ROWS = 50
  // Explained per call at most: the table's rows, so the cost stays bounded whatever the rate.
  const EXPLAIN_PER_CALL = TABLE_ROWS
  const KEY_STORAGE = 'ml-ids-api-key'
  // A flow's identity, under CICFlowMeter-V3 headers ("Src IP", "Dst Port"...), the CIC-IDS2017 ones
  // ("Source IP"...) or snake_case: column names are matched as the service matches them (snake_case).
  const IDENTITY = {
    src_ip: 'srcIp',
    source_ip: 'srcIp',
    src_port: 'srcPort',
    source_port: 'srcPort',
    dst_ip: 'dstIp',
    destination_ip: 'dstIp',
    dst_port: 'dstPort',
    destination_port: 'dstPort',
    protocol: 'protocol',
    timestamp: 'timestamp',
  }
  const PROTOCOLS = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' }

  const $ = (id) => document.getElementById(id)
  const numberFormat = new Intl.NumberFormat('en')

  let apiKey = sessionStorage.getItem(KEY_STORAGE) || ''
  let streamAbort = null
  let explanations = 'unknown' // 'unknown' | 'on' | 'off'

  const totals = { flows: 0, attacks: 0, alerts: 0, unfamiliar: 0 }
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
      totals.alerts += 1
      pendingAttacks.push({ alert: totals.alerts, data, time: Date.now(), flows: count })
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

  /** The time axis' labels; also left on the chart element, where tests read what the canvas shows. */
  function timeLabels (u, splits) {
    const labels = splits.map(clockTime)
    $('chart').dataset.timeLabels = labels.join(' ')
    return labels
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
      // Room on the right for the newest time label, centred on the plot's edge.
      padding: [12, 32, 0, 0],
      series: [
        {},
        { label: 'flows/s', stroke: '#2f6fdb', fill: 'rgba(47,111,219,0.08)', width: 2 },
        { label: 'attacks/s', stroke: '#d2352b', fill: 'rgba(210,53,43,0.10)', width: 2 },
      ],
      // Local time, 24 h, one label per 80 px at least: the default US date-and-am/pm labels overlapped.
      axes: [{ space: 80, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300], values: timeLabels }, { size: 60 }],
    }, [[], [], []], el)
    window.addEventListener('resize', () => chart.setSize({ width: Math.max(el.clientWidth, 300), height: 260 }))
  }

  const pad = (n) => String(n).padStart(2, '0')
  /** HH:MM:SS, local, 24 h, of epoch seconds. */
  function clockTime (seconds) {
    const d = new Date(seconds * 1000)
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds())
  }
  /** HH:MM:SS today, else YYYY-MM-DD HH:MM:SS; local, of epoch milliseconds. */
  function localTime (ms) {
    const d = new Date(ms)
    const day = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate())
    return (d.toDateString() === new Date().toDateString() ? '' : day + ' ') + clockTime(ms / 1000)
  }
  /** A CICFlowMeter timestamp (DD/MM/YYYY HH:MM[:SS], as the capture wrote it) as YYYY-MM-DD HH:MM:SS; anything else as is. */
  function flowTime (value) {
    const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])[Mm])?$/.exec(String(value).trim())
    if (!m) return String(value)
    let hours = Number(m[4]) % (m[7] ? 12 : 24)
    if (m[7] && m[7].toLowerCase() === 'p') hours += 12
    return m[3] + '-' + pad(m[2]) + '-' + pad(m[1]) + ' ' + pad(hours) + ':' + m[5] + ':' + (m[6] || '00')
  }
  const snakeCase = (name) => String(name).trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '')

  /** Where each part of a flow's identity sits among a message's columns. */
  function identityColumns (columns) {
    const at = {}
    columns.forEach((name, i) => {
      const role = IDENTITY[snakeCase(name)]
      if (role !== undefined && at[role] === undefined) at[role] = i
    })
    return at
  }

  /** ["10.0.0.5:52134 → 192.0.2.10:443", "TCP", "2018-02-21 10:15:06"], from what the row has. */
  function describeFlow (at, row) {
    const get = (role) => at[role] === undefined || row[at[role]] === null || row[at[role]] === undefined || row[at[role]] === '' ? null : row[at[role]]
    const srcIp = get('srcIp')
    const srcPort = get('srcPort')
    const dstIp = get('dstIp')
    const dstPort = get('dstPort')
    const from = srcIp !== null ? srcIp + (srcPort !== null ? ':' + srcPort : '') : srcPort !== null ? 'port ' + srcPort : null
    const to = dstIp !== null ? dstIp + (dstPort !== null ? ':' + dstPort : '') : dstPort !== null ? 'port ' + dstPort : null
    const parts = []
    if (from !== null || to !== null) parts.push((from !== null ? from + ' ' : '') + '→ ' + (to !== null ? to : '?'))
    const protocol = get('protocol')
    if (protocol !== null) parts.push(PROTOCOLS[protocol] || 'protocol ' + protocol)
    const timestamp = get('timestamp')
    if (timestamp !== null) parts.push(flowTime(timestamp))
    return parts
  }

  /** The parts of a flow's identity, each kept on one line, the cell wrapping between them. */
  function flowCell (row) {
    if (row.flow.length === 0) return '–'
    const cell = document.createDocumentFragment()
    row.flow.forEach((part, i) => {
      const span = document.createElement('span')
      span.className = 'part'
      span.textContent = part
      cell.append(i === 0 ? '' : ' · ', span)
    })
    return cell
  }

  /** The table rows of one attack message, newest (last in the message) first. */
  function parseAttack (pending) {
    try {
      const event = JSON.parse(pending.data)
      const { columns, data } = event.message
      const at = identityColumns(columns)
      const out = []
      for (let i = data.length - 1; i >= 0 && out.length < TABLE_ROWS; i--) {
        const frame = { columns, data: [data[i]] }
        out.push({ alert: pending.alert, time: pending.time, requestId: event.attributes.request_id, alertFlows: pending.flows, frame, flow: describeFlow(at, data[i]), score: null, top: null })
      }
      return out
    } catch (err) {
      return []
    }
  }

  /** A score or its state: coming (being explained), or not available from this backend. */
  function scoreCell (row) {
    if (row.score !== null) return row.score.toFixed(3)
    return pendingText(row)
  }

  function pendingText (row) {
    const span = document.createElement('span')
    span.className = 'pending'
    span.textContent = explanations === 'off' ? 'n/a' : row.failed ? 'unavailable' : 'explaining…'
    return span
  }

  function featuresCell (row) {
    if (row.top === null) return pendingText(row)
    const cell = document.createDocumentFragment()
    for (const [name, value] of row.top) {
      const span = document.createElement('span')
      span.className = 'feature'
      const sign = document.createElement('span')
      sign.className = value >= 0 ? 'up' : 'down'
      sign.textContent = (value >= 0 ? '+' : '') + value.toFixed(2)
      span.append(name + ' ', sign)
      cell.appendChild(span)
    }
    return cell
  }

  /** The table's columns, in order: a header, the class of its cells, and what a row shows there (text or a node). */
  const COLUMNS = [
    { header: 'Seen', className: 'time', cell: (row) => localTime(row.time) },
    { header: 'Alert (request id)', className: 'id', cell: (row) => row.requestId },
    { header: 'Flows in alert', className: 'alert-flows', cell: (row) => numberFormat.format(row.alertFlows) },
    { header: 'Flow', className: 'flow', cell: flowCell },
    { header: 'Score', className: 'score', cell: scoreCell },
    { header: 'Top features (SHAP, log-odds)', className: 'features', cell: featuresCell },
  ]

  function renderHeader () {
    const tr = document.createElement('tr')
    for (const column of COLUMNS) {
      const th = document.createElement('th')
      th.className = column.className
      th.textContent = column.header
      tr.appendChild(th)
    }
    $('attacks').tHead.replaceChildren(tr)
  }

  function renderTable () {
    const body = $('attacks').tBodies[0]
    const fragment = document.createDocumentFragment()
    rows.forEach((row, i) => {
      const tr = document.createElement('tr')
      // Rows of one alert (one notification) are kept together, newest first: marked so they read as one.
      if (i > 0 && rows[i - 1].alert === row.alert) tr.classList.add('continued')
      if (i + 1 < rows.length && rows[i + 1].alert === row.alert) tr.classList.add('same-alert-next')
      for (const column of COLUMNS) {
        const td = document.createElement('td')
        td.className = column.className
        td.append(column.cell(row))
        tr.appendChild(td)
      }
      fragment.appendChild(tr)
    })
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
    $('total-alerts').textContent = numberFormat.format(totals.alerts)
    $('attack-share').textContent = totals.flows === 0 ? '–' : (100 * totals.attacks / totals.flows).toFixed(1) + ' %'
    $('rate-now').textContent = numberFormat.format(flowSeries.length ? flowSeries[flowSeries.length - 1] : 0)
    if (pendingAttacks.length > 0) {
      const fresh = pendingAttacks.slice(-TABLE_ROWS).reverse().flatMap(parseAttack).slice(0, TABLE_ROWS)
      pendingAttacks = []
      rows.unshift(...fresh)
      rows.length = Math.min(rows.length, TABLE_ROWS)
      renderTable()
      // Explained as they arrive, not on the next tick.
      explainNewest()
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

  /** Scores and top features of the shown attacks not yet explained, from POST /api/explanations?top=3. */
  let explaining = false
  async function explainNewest () {
    if (explanations !== 'on' || explaining) return
    const todo = rows.filter(row => row.top === null && !row.explaining && !row.failed).slice(0, EXPLAIN_PER_CALL)
    if (todo.length === 0) return
    explaining = true
    let later = false
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
          renderTable()
          return
        }
        if (res.status === 429 || res.status >= 500) {
          // Busy: these rows are asked again on the next tick.
          for (const row of group) row.explaining = false
          later = true
          continue
        }
        if (!res.ok) {
          // Said in the row rather than asked for ever (e.g. a flow the model cannot read).
          for (const row of group) row.failed = true
          renderTable()
          continue
        }
        const answer = await res.json()
        group.forEach((row, i) => {
          row.score = answer[i].score
          row.top = Object.entries(answer[i].contributions)
        })
        renderTable()
      }
    } catch (err) {
      for (const row of todo) if (row.top === null) row.explaining = false
      later = true
      if (err instanceof KeyRequired) askForKey(err.message)
    } finally {
      explaining = false
    }
    // Rows that arrived meanwhile, at once; after a failure, on the next tick.
    if (!later && rows.some(row => row.top === null && !row.explaining && !row.failed)) setTimeout(explainNewest, 0)
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

  renderHeader()
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
