import type { LifecycleDeps } from '../../src/lifecycle/context.js'

const never = <T>(): Promise<T> => new Promise<T>(() => {})

/**
 * One kata-lcm process over shared fakes. `kill()` is a crash: from then on none of its port calls,
 * sleeps or timers return, exactly as if the process were gone, while the cluster lives on.
 */
export class FakeProcess {
  private alive = true
  readonly deps: LifecycleDeps

  constructor(base: LifecycleDeps) {
    this.deps = {
      ...base,
      cluster: this.guard(base.cluster),
      helm: this.guard(base.helm),
      clock: this.guard(base.clock),
      events: this.guard(base.events),
    }
  }

  get isAlive(): boolean {
    return this.alive
  }

  kill(): void {
    this.alive = false
  }

  private guard<T extends object>(target: T): T {
    return new Proxy(target, {
      get: (t, prop) => {
        const value = Reflect.get(t, prop, t) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          if (!this.alive) return never()
          const result = (value as (...a: unknown[]) => unknown).apply(t, args)
          if (!(result instanceof Promise)) return result
          return result.then(
            (v) => (this.alive ? v : never()),
            (e: unknown) => (this.alive ? Promise.reject(e) : never()),
          )
        }
      },
    })
  }
}
