/**
 * Fastify's Ajv options (`serverOptions.ajv`), in a module of their own so that the worker threads
 * compile the predictions schema exactly as the server does. Types are checked, never coerced: a
 * string where a number belongs is the client's error to see.
 */
export const AJV_OPTIONS = { customOptions: { coerceTypes: false, allowUnionTypes: true } }
