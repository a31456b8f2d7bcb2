/**
 * Readiness from the upstream's recent record. Over the last `windowMs`, the upstream counts as
 * unavailable while at least `maxFailureShare` of its calls failed: one failure makes it unready,
 * one success after it does not make it ready again (a flapping probe is worse than either answer),
 * and with no calls for `windowMs` the record is empty and it is ready again, so traffic comes back
 * to try it. Counted in one-second buckets, so memory stays constant whatever the traffic.
 */
export function createUpstreamHealth ({ windowMs = 10_000, maxFailureShare = 0.25, now = Date.now } = {}) {
  const bucketMs = 1000
  const buckets = Array.from({ length: Math.ceil(windowMs / bucketMs) }, () => ({ at: -1, ok: 0, failed: 0 }))
  let lastReason = ''

  function bucket () {
    const at = Math.floor(now() / bucketMs)
    const slot = buckets[at % buckets.length]
    if (slot.at !== at) Object.assign(slot, { at, ok: 0, failed: 0 })
    return slot
  }

  return {
    success () { bucket().ok++ },
    failure (reason: string) {
      bucket().failed++
      lastReason = reason
    },
    readiness (): { ready: true } | { ready: false, reason: string } {
      const oldest = Math.floor(now() / bucketMs) - buckets.length + 1
      let ok = 0
      let failed = 0
      for (const slot of buckets) {
        if (slot.at >= oldest) {
          ok += slot.ok
          failed += slot.failed
        }
      }
      if (failed === 0 || failed / (ok + failed) < maxFailureShare) return { ready: true }
      return { ready: false, reason: `${failed} of the last ${ok + failed} upstream calls failed (last: ${lastReason})` }
    },
  }
}
