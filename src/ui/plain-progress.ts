import type { LifecycleEvent } from '../lifecycle/engine/events.js'
import type { EventSink } from '../ports/events.port.js'

/** One timestamped line per event: for CI, logs and any output that is not a terminal. */
export class PlainProgress implements EventSink {
  constructor(private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)) {}

  emit(event: LifecycleEvent): void {
    const text = describeEvent(event)
    if (text) this.write(`${new Date().toISOString()} ${text}`)
  }
}

/** The one-line text of an event (shared by the plain and terminal renderers). Pure. */
export function describeEvent(event: LifecycleEvent): string | undefined {
  switch (event.type) {
    case 'info':
      return event.message
    case 'warning':
      return `WARNING: ${event.message}`
    case 'wave-start':
      return `wave ${event.wave}/${event.waves}${event.pool ? ` (pool ${event.pool})` : ''}: ${event.nodes.join(', ')}`
    case 'phase-start':
      return `wave ${event.wave} ${event.phase}: ${event.nodes.join(', ')}`
    case 'phase-end':
      return event.failures.length === 0
        ? undefined
        : event.failures.map((f) => `wave ${event.wave} ${event.phase} FAILED on ${f.node}: ${f.reason}`).join('\n')
    case 'node-status':
      return `  ${event.node}: ${event.status}${event.message ? ` (${event.message})` : ''}`
    case 'wave-end':
      return `wave ${event.wave} done: ${event.passed.length} passed${event.rolledBack.length ? `, rolled back: ${event.rolledBack.join(', ')}` : ''}${event.failed.length ? `, FAILED (manual action): ${event.failed.join(', ')}` : ''}`
  }
}
