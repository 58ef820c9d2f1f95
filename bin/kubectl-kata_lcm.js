#!/usr/bin/env node
// `kubectl kata-lcm ...`: kubectl runs the executable named kubectl-kata_lcm it finds on PATH (a dash
// in the plugin's name is an underscore in the file's). The same CLI as bin/run.js, nothing more.
await import('./run.js')
