import type { LifecycleEvent } from '../lifecycle/engine/events.js'

/** Where the domain reports progress: the UI renders it (listr2, plain lines, or nothing for --json). */
export interface EventSink {
  emit(event: LifecycleEvent): void
}
