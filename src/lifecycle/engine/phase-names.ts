/**
 * The phases of a wave, by name. phases.ts gives each its handler (`satisfies Record<Phase, ...>`:
 * the compiler refuses a name without a handler and a handler without a name); the events and the
 * ports name a phase from here, so they need not import the engine.
 */
export type Phase = 'prepare' | 'drain' | 'upgrade' | 'verify' | 'soak' | 'rollback'
