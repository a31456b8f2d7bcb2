import { Type, type Static } from '@sinclair/typebox'

/** What /health, /ready and /ping answer. */
export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  backend: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
}, { $id: 'Health', title: 'Health' })
export type Health = Static<typeof Health>
