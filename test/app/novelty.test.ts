import t from 'tap'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../app.js'
import { notificationsFor } from '../../notifications/message.js'
import { build, examples, metadata, modelDir, novelty, noveltyParity, parity, splitFrame } from '../helper.js'

type App = Awaited<ReturnType<typeof build>>
const postJson = (app: App, url: string, body: unknown) =>
  app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
const frame = { columns: noveltyParity.columns, data: noveltyParity.data }

function copyModel (): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'ml-ids-novelty-')), 'model')
  cpSync(modelDir, dir, { recursive: true })
  return dir
}

t.test('/api/scores: every row\'s unfamiliarity equals scikit-learn\'s isolation-forest score, flagged at the detector\'s threshold', async t => {
  const app = await build(t)
  const res = await postJson(app, '/api/scores', frame)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.novelty.threshold, novelty.threshold, 'the detector\'s own threshold')
  t.equal(body.novelty.scores.length, noveltyParity.scores.length)
  const off = body.novelty.scores.map((s: number, i: number) => Math.abs(s - noveltyParity.scores[i])).filter((d: number) => d > 1e-6)
  t.same(off, [], 'within 1e-6 of scikit-learn on every parity row')
  t.same(body.novelty.unfamiliar, body.novelty.scores.map((s: number) => s >= novelty.threshold))
  t.ok(body.novelty.unfamiliar.every(Boolean), 'random flows are unlike the training flows')
  const median = (await postJson(app, '/api/scores', splitFrame([examples.benign]))).json()
  t.same(median.novelty.unfamiliar, [false], 'the median benign training flow is familiar')
})

t.test('/api/explanations carries the same score and flag per row; /invocations is unchanged', async t => {
  const app = await build(t)
  const rows = { columns: frame.columns, data: frame.data.slice(0, 20) }
  const scored = (await postJson(app, '/api/scores', rows)).json()
  const explained = (await postJson(app, '/api/explanations?top=1', rows)).json()
  t.same(explained.map((e: { novelty: number }) => e.novelty), scored.novelty.scores)
  t.same(explained.map((e: { unfamiliar: boolean }) => e.unfamiliar), scored.novelty.unfamiliar)
  const invoked = await app.inject({ method: 'POST', url: '/invocations', headers: { 'content-type': 'application/json' }, payload: { dataframe_split: rows } })
  t.same(invoked.json(), { predictions: scored.predictions }, 'predictions only, as before')
})

t.test('NOVELTY_THRESHOLD replaces the detector\'s threshold; /api/model shows the one in force and the card', async t => {
  const app = await build(t, { NOVELTY_THRESHOLD: '0.99' })
  const body = (await postJson(app, '/api/scores', frame)).json()
  t.equal(body.novelty.threshold, 0.99)
  t.same(body.novelty.unfamiliar, body.novelty.scores.map((s: number) => s >= 0.99))
  const info = (await app.inject('/api/model')).json().novelty
  t.match(info, { available: true, threshold: 0.99, card: { kind: 'isolation-forest', threshold: novelty.threshold, model_version: metadata.version } })
  t.notOk('trees' in info.card, 'the card without its trees')
  t.ok(info.card.holdout_days_unseen.attacks_caught_or_flagged >= 0, 'the unseen-days figures')
  t.equal(info.card.model_version, metadata.version, 'fitted beside the bundled model')
  await t.rejects(build(t, { NOVELTY_THRESHOLD: '0' }), /NOVELTY_THRESHOLD/)
})

t.test('a model without novelty.json still serves: no scores, and /api/model says why', async t => {
  const dir = copyModel()
  rmSync(join(dir, 'novelty.json'))
  const app = await build(t, { MODEL_DIR: dir })
  const body = (await postJson(app, '/api/scores', { columns: parity.columns, data: parity.data.slice(0, 3) })).json()
  t.same(Object.keys(body), ['model', 'threshold', 'scores', 'predictions'])
  const explained = (await postJson(app, '/api/explanations', { columns: parity.columns, data: parity.data.slice(0, 3) })).json()
  t.notOk('novelty' in explained[0] || 'unfamiliar' in explained[0])
  t.match((await app.inject('/api/model')).json().novelty, { available: false, reason: /no novelty\.json/ })
})

t.test('a malformed detector, or one for other features, stops the start naming the file', async t => {
  const dir = copyModel()
  const file = join(dir, 'novelty.json')
  const card = JSON.parse(readFileSync(file, 'utf8'))
  writeFileSync(file, '{"kind":')
  await t.rejects(build(t, { MODEL_DIR: dir }), /novelty\.json cannot be read/)
  writeFileSync(file, JSON.stringify({ ...card, threshold: 'high' }))
  await t.rejects(build(t, { MODEL_DIR: dir }), /novelty\.json is malformed: \/threshold/)
  writeFileSync(file, JSON.stringify({ ...card, features: [...card.features].reverse() }))
  await t.rejects(build(t, { MODEL_DIR: dir }), /novelty\.json and the model disagree on the features/)
  const badTree = { ...card.trees[0], split_indices: card.trees[0].split_indices.map(() => 999) }
  writeFileSync(file, JSON.stringify({ ...card, trees: [badTree] }))
  await t.rejects(build(t, { MODEL_DIR: dir }), /novelty\.json: tree 0: node 0 splits on feature 999/)
})

t.test('notificationsFor with unfamiliarity flags: attacks, flagged benign rows apart with unfamiliar=true, the rest only with NOTIFY=all', async t => {
  const frame = { columns: ['a'], index: ['r0', 'r1', 'r2', 'r3'], data: [[0], [1], [2], [3]] }
  const predictions = [1, 0, 0, 1] as Array<0 | 1>
  const flags = Uint8Array.of(0, 1, 0, 1) // row 3 is an attack: its flag changes nothing
  const context = { model: 'm', requestId: 'q' }
  const grouped = notificationsFor(frame, predictions, 'unfamiliar', context, 'request', flags)
  t.same(grouped.map(n => [n.attributes, JSON.parse(n.message).index]), [
    [{ prediction: 'attack', model: 'm', request_id: 'q', rows: '2' }, ['r0', 'r3']],
    [{ prediction: 'benign', model: 'm', request_id: 'q', rows: '1', unfamiliar: 'true' }, ['r1']],
  ])
  t.same(JSON.parse(grouped[1].message), { columns: ['a', 'prediction'], index: ['r1'], data: [[1, 0]] }, 'the same body as any benign message')
  const all = notificationsFor(frame, predictions, 'all', context, 'row', flags)
  t.same(all.map(n => [n.attributes.prediction, n.attributes.unfamiliar, JSON.parse(n.message).index[0]]), [
    ['attack', undefined, 'r0'], ['attack', undefined, 'r3'], ['benign', 'true', 'r1'], ['benign', undefined, 'r2'],
  ])
  t.same(notificationsFor(frame, predictions, 'unfamiliar', context, 'row').map(n => n.attributes.prediction), ['attack', 'attack'],
    'without flags (a worker thread built them), attacks only')
})

for (const [where, env] of [['on the main thread', { WORKERS: '0' }], ['in a worker thread', { WORKERS: '1', WORKER_MIN_BYTES: '0' }]] as const) {
  t.test(`NOTIFY=unfamiliar (${where}): attacks and the benign flows the detector flags are notified, familiar benign flows are not`, async t => {
    const file = join(mkdtempSync(join(tmpdir(), 'ml-ids-unfamiliar-')), 'notifications.jsonl')
    const app = createApp({ env: { NOTIFY: 'unfamiliar', NOTIFY_LOG_FILE: file, NOTIFY_GROUPING: 'row', ...env } })
    t.teardown(() => app.close())
    await app.ready()
    // The median benign training flow (familiar), and parity rows (random, every one unfamiliar) of both predictions.
    const scored = (await postJson(app, '/api/scores', frame)).json()
    const benign = scored.predictions.indexOf(0)
    const attack = scored.predictions.indexOf(1)
    t.ok(benign >= 0 && attack >= 0 && scored.novelty.unfamiliar[benign], 'a benign unfamiliar parity row and an attack')
    const median = examples.benign
    const rows = [noveltyParity.columns.map(c => median[c] ?? null), noveltyParity.data[benign], noveltyParity.data[attack]]
    await postJson(app, '/api/predictions', { columns: noveltyParity.columns, data: rows })
    t.match((await app.inject('/api/notifications/stats')).json(), { mode: 'unfamiliar' })
    await app.close()
    const lines = readFileSync(file, 'utf8').trim().split('\n').map(line => JSON.parse(line))
    const ofRequest = lines.slice(-2)
    t.same(ofRequest.map(l => [l.message.index[0], l.attributes.prediction, l.attributes.unfamiliar]), [[2, 'attack', undefined], [1, 'benign', 'true']],
      'the attack, then the unfamiliar benign flow; the familiar one (row 0) is not notified')
  })
}

t.test('NOTIFY=unfamiliar without a detector stops the start, saying why', async t => {
  const dir = copyModel()
  rmSync(join(dir, 'novelty.json'))
  await t.rejects(build(t, { MODEL_DIR: dir, NOTIFY: 'unfamiliar' }), /NOTIFY=unfamiliar needs the embedded model with its unfamiliar-flow detector/)
})
