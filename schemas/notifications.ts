import { Type, type Static } from '@sinclair/typebox'

/** What a live subscriber receives: attacks only, or every prediction. */
export const StreamInclude = Type.Union([Type.Literal('attacks'), Type.Literal('all')], { default: 'attacks', description: 'attacks only (default), or every prediction' })
export type StreamInclude = Static<typeof StreamInclude>

export const NotificationQuery = Type.Object({
  include: Type.Optional(StreamInclude),
}, { additionalProperties: false })
export type NotificationQuery = Static<typeof NotificationQuery>

const count = (description: string) => Type.Integer({ minimum: 0, description })

export const NotificationStats = Type.Object({
  mode: Type.Union([Type.Literal('all'), Type.Literal('attacks'), Type.Literal('unfamiliar'), Type.Literal('none')], { description: 'NOTIFY: which predictions are notified (`unfamiliar`: attacks and the benign flows the unfamiliar-flow detector flags)' }),
  grouping: Type.Union([Type.Literal('request'), Type.Literal('row')], { description: 'NOTIFY_GROUPING: one message per class per request, or per row' }),
  journal: Type.Union([Type.Literal('on'), Type.Literal('fsync'), Type.Literal('off')], { description: 'NOTIFY_JOURNAL' }),
  sns: Type.Union([Type.Null(), Type.Object({
    published: count('Notifications SNS accepted'),
    retried: count('Notifications queued again after a failed attempt'),
    spilled: count('Notifications left on disk for a later replay (queue full, SNS down past the attempts, or shutdown)'),
    dead_lettered: count('Notifications SNS refused for good (or over its size limits), kept in the dead-letter file'),
    dead_letter_refused: count('Notifications refused for good but not kept: the dead-letter file was at NOTIFY_DEAD_LETTER_MAX_BYTES (logged)'),
    dead_letter_bytes: count('Size of the dead-letter file'),
    replayed: count('Notifications read back from disk'),
    lost: count('Notifications neither published nor written to disk at shutdown (logged as errors)'),
    queued: count('Notifications waiting in memory'),
    in_flight: count('Notifications in SNS calls under way'),
    held: count('Notifications neither published nor on disk, kept in memory: predictions answer 503 while any is'),
    backlog_bytes: count('Bytes of the journal/spill files plus held notifications'),
    oldest_unpublished_seconds: Type.Number({ minimum: 0, description: 'Age of the oldest notification not yet published (0 when none)' }),
    spill_write_failures: count('Journal/spill writes that failed (disk full, read-only, over NOTIFY_SPILL_MAX_BYTES)'),
    damaged_records: count('Torn or corrupt journal records skipped when reading back (each run of damaged bytes once; logged)'),
    unreadable_segments: count('Journal segments that cannot be read now: skipped, tried again every minute, logged once per change'),
    sns_calls: count('Publish and PublishBatch calls made'),
    failed_calls: count('Calls that failed as a whole'),
  })], { description: 'null when AWS_SNS_PREDICTIONS_TOPIC is not set' }),
  stream: Type.Object({
    subscribers: count('Server-Sent Events subscribers connected'),
    emitted: count('Events written to subscribers'),
    dropped_subscribers: count('Subscribers disconnected for reading too slowly'),
  }),
}, { $id: 'NotificationStats', title: 'NotificationStats' })
export type NotificationStats = Static<typeof NotificationStats>
