import t from 'tap'
import { createUpstreamHealth } from '../../classifier/upstream-health.js'

t.test('upstream health: unready while a quarter of the window failed, ready once the window is clean or idle', async t => {
  let clock = 1_000_000
  const health = createUpstreamHealth({ windowMs: 10_000, maxFailureShare: 0.25, now: () => clock })
  t.same(health.readiness(), { ready: true }, 'no calls: ready')
  health.failure('boom')
  t.match(health.readiness(), { ready: false, reason: /1 of the last 1 upstream calls failed \(last: boom\)/ })
  health.success()
  t.equal(health.readiness().ready, false, 'one success does not clear it')
  health.success()
  health.success()
  t.equal(health.readiness().ready, false, '1 of 4 is a quarter')
  health.success()
  t.equal(health.readiness().ready, true, '1 of 5 is under a quarter')
  clock += 3_000
  for (let i = 0; i < 3; i++) health.failure('again')
  t.equal(health.readiness().ready, false, '4 of 9')
  clock += 9_500
  t.equal(health.readiness().ready, false, 'the later failures are still in the window')
  clock += 1_000
  t.equal(health.readiness().ready, true, 'an idle window is ready again')
})
