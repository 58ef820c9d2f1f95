// Writes the files derived from the settings table (src/lifecycle/settings/settings.ts):
// chart/values.schema.json's `defaults.properties`, chart/values.yaml's `defaults:` block, the
// WorkflowTemplate's parameters (chart/templates/_parameters.tpl) and docs/argo.md's parameter
// table. test/unit/chart/settings.test.ts fails while a checked-in file differs from what this writes.
//
//   npm run generate
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { argoDocFile, parametersTemplate, valuesSchemaFile, valuesYamlFile } from './settings-files.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const FILES: Record<string, (current: string) => string> = {
  'chart/values.schema.json': valuesSchemaFile,
  'chart/values.yaml': valuesYamlFile,
  'chart/templates/_parameters.tpl': () => parametersTemplate(),
  'docs/argo.md': argoDocFile,
}

for (const [name, derive] of Object.entries(FILES)) {
  const file = path.join(ROOT, name)
  const current = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const next = derive(current)
  if (next === current) continue
  writeFileSync(file, next)
  console.log(`wrote ${name}`)
}
