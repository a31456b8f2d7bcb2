// The unit tests (modules alone, no app) in one process: see test/support/groups.ts.
import { runFilesIn } from './support/groups.js'

await runFilesIn('unit', 240_000)
