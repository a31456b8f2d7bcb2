/**
 * The SNS sender thread (sender-thread.ts): makes the calls the main thread posts, with the real
 * @aws-sdk/client-sns client, and posts back each call's outcome.
 */
import { setMaxListeners } from 'node:events'
import { parentPort, workerData } from 'node:worker_threads'
import { createSender, createSnsClient } from './sender.js'
import type { SenderReply, SenderRequest, SenderWorkerData } from './sender-thread.js'

const { config } = (workerData as SenderWorkerData).mlIdsSnsSender
const sender = createSender(createSnsClient(config), config.AWS_SNS_PREDICTIONS_TOPIC)
let aborter = new AbortController()
setMaxListeners(0, aborter.signal)

parentPort!.on('message', (request: SenderRequest) => {
  if ('abort' in request) {
    // Shutdown past its deadline: the calls out now end; a later one (none is expected) gets a fresh signal.
    aborter.abort()
    aborter = new AbortController()
    setMaxListeners(0, aborter.signal)
    return
  }
  sender.send(request.batch, aborter.signal).then(result => {
    parentPort!.postMessage({ id: request.id, result } satisfies SenderReply)
  })
})
