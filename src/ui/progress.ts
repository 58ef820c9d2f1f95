import type { EventSink } from '../ports/events.port.js'
import { ListrProgress } from './listr-progress.js'
import { PlainProgress } from './plain-progress.js'

export interface Progress extends EventSink {
  close(): Promise<void>
}

/**
 * Picks the renderer: listr2 on an interactive terminal, plain timestamped lines on stderr in CI or
 * pipes. With --json stdout carries only the report; progress still goes to a non-terminal stderr
 * (a CI log wants both), and stays quiet on a terminal.
 */
export function createProgress(options: { json: boolean }): Progress {
  const interactive = process.stderr.isTTY === true && !process.env.CI
  if (options.json && interactive) return { emit: () => undefined, close: async () => undefined }
  if (interactive) return new ListrProgress()
  const plain = new PlainProgress()
  return { emit: (event) => plain.emit(event), close: async () => undefined }
}
