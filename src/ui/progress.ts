import type { EventSink } from '../ports/events.port.js'
import { ListrProgress } from './listr-progress.js'
import { PlainProgress } from './plain-progress.js'

export interface Progress extends EventSink {
  close(): Promise<void>
}

/** Picks the renderer: nothing for --json, listr2 on an interactive terminal, plain lines in CI or pipes. */
export function createProgress(options: { json: boolean }): Progress {
  if (options.json) return { emit: () => undefined, close: async () => undefined }
  const interactive = process.stderr.isTTY === true && !process.env.CI
  if (interactive) return new ListrProgress()
  const plain = new PlainProgress()
  return { emit: (event) => plain.emit(event), close: async () => undefined }
}
