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
    throw new ConfigError((err as Error).message, { cause: err })
  }
}, { name: 'env' })
