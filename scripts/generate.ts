// Writes the files derived from the settings table (src/lifecycle/settings/settings.ts):
// chart/values.schema.json's `defaults.properties`, chart/values.yaml's `defaults:` block, the
// WorkflowTemplate's parameters (chart/templates/_parameters.tpl), docs/argo.md's parameter
// table and docs/policy.md's table of fields. test/unit/chart/settings.test.ts fails while a
// checked-in file differs from what this writes.
//
//   npm run generate
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { GENERATED_FILES } from './settings-files.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

for (const [name, derive] of Object.entries(GENERATED_FILES)) {
  const file = path.join(ROOT, name)
  const current = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const next = derive(current)
  if (next === current) continue
  writeFileSync(file, next)
  console.log(`wrote ${name}`)
}
