// Writes the files derived from the settings table (src/lifecycle/settings/settings.ts):
// chart/values.schema.json's `defaults.properties`. test/unit/chart/settings.test.ts fails while a
// checked-in file differs from what this writes.
//
//   npm run generate
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chartDefaultsSchema } from '../src/lifecycle/settings/settings.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const file = path.join(ROOT, 'chart/values.schema.json')
const schema = JSON.parse(readFileSync(file, 'utf8')) as { properties: { defaults: { properties: unknown } } }
schema.properties.defaults.properties = chartDefaultsSchema()
writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`)
console.log(`wrote ${path.relative(ROOT, file)} (defaults: ${Object.keys(chartDefaultsSchema()).length} values)`)
