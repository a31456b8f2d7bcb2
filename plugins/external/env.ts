import fp from 'fastify-plugin'
import fastifyEnv from '@fastify/env'
import { ConfigError } from '../../errors.js'
import { ConfigSchema, type Config } from '../../schemas/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface EnvOptions {
  /** Variables to read instead of process.env (tests pass their own). */
  env?: NodeJS.ProcessEnv
}

/** Validates the configuration at start-up; a wrong value fails start-up naming the variable. */
export default fp<EnvOptions>(async function env (fastify, opts) {
  // `FOO=` (set but empty, as docker run -e FOO= and compose files do) means unset. Only `data` is
  // read: env-schema would otherwise lay it over process.env, where the empty value is still set.
  const data = Object.fromEntries(Object.entries(opts.env ?? process.env).filter(([, value]) => value !== ''))
  try {
    await fastify.register(fastifyEnv, { confKey: 'config', schema: ConfigSchema, data, env: false, dotenv: false })
  } catch (err) {
    const errors = (err as { errors?: ValidationError[] }).errors
    throw new ConfigError(Array.isArray(errors) && errors.length > 0 ? describeErrors(errors, data) : (err as Error).message, { cause: err })
  }
  // For SageMaker and SNS alike: half a key pair would otherwise be ignored for the default chain.
  if ((fastify.config.AWS_ACCESS_KEY === undefined) !== (fastify.config.AWS_SECRET_KEY === undefined)) {
    throw new ConfigError('set both AWS_ACCESS_KEY and AWS_SECRET_KEY, or neither to use the default credential chain')
  }
}, { name: 'env' })

interface ValidationError { instancePath: string, keyword: string, message?: string, params: { allowedValue?: unknown } }

// Never repeated in a message: a credential mistyped is still a credential.
const SECRET_VARIABLES = new Set(['AWS_ACCESS_KEY', 'AWS_SECRET_KEY', 'API_KEYS'])

/**
 * One clause per variable (ajv writes one per alternative: "must be equal to constant" as many times as
 * there are choices): the allowed values of a choice, or the first rule broken, with the value given.
 */
export function describeErrors (errors: readonly ValidationError[], given: Record<string, string | undefined>): string {
  const byVariable = new Map<string, ValidationError[]>()
  for (const error of errors) {
    const name = error.instancePath.replace(/^\//, '')
    byVariable.set(name, [...(byVariable.get(name) ?? []), error])
  }
  return [...byVariable].map(([name, found]) => {
    const choices = found.filter(e => e.keyword === 'const').map(e => String(e.params.allowedValue))
    const rule = choices.length > 0 && found.every(e => e.keyword === 'const' || e.keyword === 'anyOf')
      ? `must be one of ${choices.join(', ')}`
      : found.find(e => e.keyword !== 'anyOf')?.message ?? found[0].message ?? 'is not valid'
    const value = given[name]
    const shown = value === undefined || SECRET_VARIABLES.has(name) ? '' : ` (given ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)})`
    return `env/${name} ${rule}${shown}`
  }).join('; ')
}
