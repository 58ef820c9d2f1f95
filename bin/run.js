#!/usr/bin/env node
import { execute, settings } from '@oclif/core'

// The published CLI runs the compiled dist/ only; bin/dev.js runs the TypeScript sources.
settings.tsnodeEnabled = false
await execute({ dir: import.meta.url })
