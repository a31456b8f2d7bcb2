import type { Test } from 'tap'
import type { Config } from '../../schemas/config.js'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { examples } from '../helper.js'

export const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ml-ids-predictions'

/** An app's environment publishing to the loopback SNS at `url`: one message per row, fast retries, a journal of its own. */
export function snsEnv (url: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    AWS_SNS_PREDICTIONS_TOPIC: TOPIC,
    AWS_SNS_HOST: url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
    NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'ml-ids-notify-')),
    NOTIFY_RETRY_BASE_MS: '5',
    NOTIFY_RETRY_MAX_MS: '40',
    NOTIFY_GROUPING: 'row',
    ...extra,
  }
}

/** Waits for `condition`, failing the test (named by `what`) past `timeoutMs`. */
export async function until (t: Test, what: string, condition: () => boolean, timeoutMs = 10000) {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) {
      t.fail(`timed out waiting for ${what}`)
      return
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Rows that differ (so each message is recognisable), alternating benign and attack. */
export function rows (count: number) {
  return Array.from({ length: count }, (_, i) => ({ ...(i % 2 === 0 ? examples.benign : examples.attack), flow_iat_min: 1000 + i }))
}

/** The configuration a Sender is built from (createSender, createThreadSender), against the loopback SNS at `url`. */
export const senderConfig = (url: string) => ({
  AWS_SNS_PREDICTIONS_TOPIC: TOPIC,
  AWS_SNS_HOST: url,
  AWS_ACCESS_KEY: 'AKIDEXAMPLE',
  AWS_SECRET_KEY: 'secret',
  NOTIFY_CONCURRENCY: 4,
  SNS_TIMEOUT_MS: 5000,
}) as unknown as Config & { AWS_SNS_PREDICTIONS_TOPIC: string }
