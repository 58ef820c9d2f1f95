#!/usr/bin/env node
import module from 'node:module'

// V8's code cache for kata-lcm's modules (Node's compile cache; in the image, the launcher points
// NODE_COMPILE_CACHE at the cache built with it): a start compiles nothing it compiled before.
module.enableCompileCache?.()
const { execute, settings } = await import('@oclif/core')
// The published CLI runs the compiled dist/ only; bin/dev.js runs the TypeScript sources.
settings.tsnodeEnabled = false
await execute({ dir: import.meta.url })
