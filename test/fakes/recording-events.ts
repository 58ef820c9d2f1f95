import type { EventSink } from '../../src/ports/events.port.js'
import type { LifecycleEvent } from '../../src/lifecycle/engine/events.js'

/** Keeps every event the domain emits, in order. */
export class RecordingEvents implements EventSink {
  readonly events: LifecycleEvent[] = []

  emit(event: LifecycleEvent): void {
    this.events.push(structuredClone(event))
  }

  /** The events of one type, typed. */
  ofType<K extends LifecycleEvent['type']>(type: K): Extract<LifecycleEvent, { type: K }>[] {
    return this.events.filter((e): e is Extract<LifecycleEvent, { type: K }> => e.type === type)
  }

  /** The statuses one node went through, in order. */
  statusesOf(node: string): string[] {
    return this.ofType('node-status')
      .filter((e) => e.node === node)
      .map((e) => e.status)
  }
}
