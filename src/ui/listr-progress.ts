import { Listr, type ListrTaskWrapper } from 'listr2'
import type { LifecycleEvent, Phase } from '../lifecycle/engine/events.js'
import { PHASES } from '../lifecycle/engine/phases.js'
import type { EventSink } from '../ports/events.port.js'
import { describeEvent } from './plain-progress.js'

interface PhaseSlot {
  started: boolean
  task?: ListrTaskWrapper<unknown, never, never>
  done: (failures: string[] | 'skip') => void
  result: Promise<string[] | 'skip'>
}

/**
 * listr2 in a terminal: one list per wave with its phases; node statuses stream as task output.
 * The domain drives it purely through events; `close()` waits for the last list to finish drawing.
 */
export class ListrProgress implements EventSink {
  private slots = new Map<Phase, PhaseSlot>()
  private running: Promise<unknown> = Promise.resolve()
  /** The listr task drawing right now; node statuses go to its output line. */
  private active: ListrTaskWrapper<unknown, never, never> | undefined

  /** Drawing is best effort: a renderer problem must never disturb the run. */
  emit(event: LifecycleEvent): void {
    try {
      this.render(event)
    } catch {
      process.stderr.write(`${describeEvent(event) ?? ''}\n`)
    }
  }

  private render(event: LifecycleEvent): void {
    switch (event.type) {
      case 'wave-start':
        return this.startWave(describeEvent(event)!)
      case 'phase-start': {
        const slot = this.slots.get(event.phase)
        if (slot) {
          slot.started = true
          if (slot.task) slot.task.title = `${event.phase}: ${event.nodes.join(', ')}`
        }
        return
      }
      case 'phase-end':
        return this.slots.get(event.phase)?.done(event.failures.map((f) => `${f.node}: ${f.reason}`))
      case 'node-status':
        if (this.active) this.active.output = describeEvent(event)?.trim() ?? ''
        return
      case 'wave-end':
        for (const slot of this.slots.values()) slot.done('skip')
        return
      default:
        process.stderr.write(`${describeEvent(event)}\n`)
    }
  }

  private startWave(title: string): void {
    this.slots = new Map(
      PHASES.map((phase) => {
        let done!: PhaseSlot['done']
        const result = new Promise<string[] | 'skip'>((resolve) => {
          done = resolve
        })
        return [phase, { started: false, done, result }]
      }),
    )
    const slots = this.slots
    const list = new Listr(
      [
        {
          title,
          task: (_ctx, parent) =>
            parent.newListr(
              PHASES.map((phase) => ({
                title: phase,
                task: async (_c: unknown, task: ListrTaskWrapper<unknown, never, never>) => {
                  const slot = slots.get(phase)!
                  slot.task = task
                  this.active = task
                  const outcome = await slot.result.finally(() => {
                    if (this.active === task) this.active = undefined
                  })
                  // listr's "skipped" state, drawn for a phase this wave never entered (e.g. drain without --drain).
                  if (outcome === 'skip' && !slot.started) return task.skip(`${phase}: not needed`)
                  if (Array.isArray(outcome) && outcome.length > 0)
                    throw new Error(`${phase} failed: ${outcome.join('; ')}`)
                },
              })),
              { concurrent: false, exitOnError: false },
            ),
        },
      ],
      { exitOnError: false, rendererOptions: { collapseSubtasks: false } },
    )
    const previous = this.running
    this.running = previous.then(() => list.run().catch(() => undefined))
  }

  /** Waits until the last wave's list has rendered its end state. */
  async close(): Promise<void> {
    await this.running
  }
}
