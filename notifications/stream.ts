import type { ServerResponse } from 'node:http'
import type { StreamInclude } from '../schemas/notifications.js'
import type { Notification } from './message.js'

interface Subscriber {
  readonly response: ServerResponse
  readonly include: StreamInclude
}

/** What a stream answers with, for GET and HEAD alike. */
export const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const

/**
 * The event a subscriber receives: the SNS message's JSON and its attributes, one line of valid JSON
 * whatever the body's spelling (messages carry rows written anew: message.ts), so one `data:` field.
 */
export const eventData = (n: Notification) => `{"message":${n.message},"attributes":${JSON.stringify(n.attributes)}}`

/**
 * Live notifications as Server-Sent Events to any number of subscribers. A subscriber that reads
 * slower than notifications come is disconnected once its unsent backlog passes `maxBufferBytes`,
 * so one slow client cannot grow the server's memory; it may reconnect.
 */
export function createNotificationStream (opts: { maxBufferBytes: number, heartbeatMs?: number }) {
  const subscribers = new Set<Subscriber>()
  let sequence = 0
  const counters = { emitted: 0, dropped_subscribers: 0 }
  // Comments keep idle connections open through proxies that close silent ones.
  const heartbeat = setInterval(() => {
    for (const s of subscribers) s.response.write(': keep-alive\n\n')
  }, opts.heartbeatMs ?? 15_000).unref()

  function drop (subscriber: Subscriber): void {
    subscribers.delete(subscriber)
    subscriber.response.end()
  }

  return {
    subscribe (response: ServerResponse, include: StreamInclude): () => void {
      const subscriber = { response, include }
      response.writeHead(200, STREAM_HEADERS)
      response.write(`: subscribed to ${include === 'all' ? 'all predictions' : 'attacks'}\n\n`)
      subscribers.add(subscriber)
      return () => { subscribers.delete(subscriber) }
    },
    get subscribers () { return subscribers.size },
    /** The most any subscriber takes: `all` if one takes every prediction, `attacks` if some take attacks only, undefined with none. */
    widestSubscription (): StreamInclude | undefined {
      let widest: StreamInclude | undefined
      for (const s of subscribers) {
        if (s.include === 'all') return 'all'
        widest = 'attacks'
      }
      return widest
    },
    emit (notifications: readonly Notification[]): void {
      if (subscribers.size === 0) return
      for (const n of notifications) {
        const id = ++sequence
        const event = `id: ${id}\nevent: prediction\ndata: ${eventData(n)}\n\n`
        for (const s of subscribers) {
          if (s.include === 'attacks' && n.attributes.prediction !== 'attack') continue
          if (s.response.writableLength > opts.maxBufferBytes) {
            counters.dropped_subscribers++
            drop(s)
            continue
          }
          s.response.write(event)
          counters.emitted++
        }
      }
    },
    stats: () => ({ subscribers: subscribers.size, ...counters }),
    close (): void {
      clearInterval(heartbeat)
      for (const s of subscribers) drop(s)
    },
  }
}

export type NotificationStream = ReturnType<typeof createNotificationStream>
