import { Type, type Static } from '@sinclair/typebox'

/** The one shape of every error response. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, examples: [400] }),
  error: Type.String({ description: 'HTTP reason phrase', examples: ['Bad Request'] }),
  code: Type.Optional(Type.String({ description: 'Stable machine-readable code', examples: ['ROW_LENGTH_MISMATCH'] })),
  message: Type.String({ description: 'What was wrong, naming the offending field, row or column', examples: ['row 3 has 78 values but there are 79 columns'] }),
}, { $id: 'ErrorResponse', title: 'ErrorResponse' })
export type ErrorResponse = Static<typeof ErrorResponse>

export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map(code => [code, Type.Ref(ErrorResponse)]))
