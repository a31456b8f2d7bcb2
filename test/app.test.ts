// The in-process app tests (inject, or a listening server on loopback) in one process: see test/support/groups.ts.
import { runFilesIn } from './support/groups.js'

await runFilesIn('app', 480_000)
