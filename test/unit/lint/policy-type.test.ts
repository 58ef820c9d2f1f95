/**
 * The fleet policy's TypeScript type (`Policy` in src/lifecycle/policy/policy.ts) is written by hand
 * for the code that reads a policy; its JSON schema is built from the settings table. This test reads
 * the type with the TypeScript compiler and holds it to the schema: the same fields at every depth,
 * each optional where the schema does not require it, and the same kind of value (a string, a
 * number, a boolean, one of the same words). A setting added to the table without its field in the
 * type, or a field left in the type after its setting went, fails here.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { POLICY_SCHEMA } from '../../../src/lifecycle/policy/policy-schema.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const POLICY_FILE = path.join(ROOT, 'src/lifecycle/policy/policy.ts')

/** Where the walk stops: a Kubernetes object kept as a mapping (the schema checks only its head). */
const OPAQUE = new Set(['pod'])

interface SchemaNode {
  type?: string | string[]
  enum?: unknown[]
  const?: unknown
  properties?: Record<string, SchemaNode>
  required?: string[]
  items?: SchemaNode
  anyOf?: SchemaNode[]
}

/** `path: kind` for every field, kinds sorted: `string`, `number`, `boolean`, `'a'|'b'`, `mapping`, `list`. */
type Fields = Record<string, string>

function schemaFields(node: SchemaNode, at: string, out: Fields, optional = false): Fields {
  const alternatives = node.anyOf ?? [node]
  const kinds = new Set<string>()
  for (const alt of alternatives) {
    if (alt.enum)
      kinds.add(
        alt.enum
          .map((e) => JSON.stringify(e))
          .sort()
          .join('|'),
      )
    else if (alt.const !== undefined) kinds.add(JSON.stringify(alt.const))
    else
      for (const t of [alt.type ?? []].flat())
        kinds.add(t === 'integer' ? 'number' : t === 'object' ? 'mapping' : t === 'array' ? 'list' : t)
    if (alt.properties && !OPAQUE.has(at.split('.').pop()!))
      for (const [key, child] of Object.entries(alt.properties))
        schemaFields(child, at ? `${at}.${key}` : key, out, !(alt.required ?? []).includes(key))
    if (alt.items?.properties) schemaFields(alt.items, `${at}[]`, out)
  }
  if (at && !at.endsWith('[]')) out[at] = `${[...kinds].sort().join(' ')}${optional ? '?' : ''}`
  return out
}

function typeFields(checker: ts.TypeChecker, type: ts.Type, at: string, out: Fields, optional = false): Fields {
  const parts = (type.isUnion() ? type.types : [type]).filter((t) => !(t.flags & ts.TypeFlags.Undefined))
  const kinds = new Set<string>()
  const literals: string[] = []
  for (const part of parts) {
    if (part.isStringLiteral()) literals.push(JSON.stringify(part.value))
    else if (part.flags & ts.TypeFlags.BooleanLiteral) kinds.add('boolean')
    else if (part.flags & ts.TypeFlags.String) kinds.add('string')
    else if (part.flags & ts.TypeFlags.Number) kinds.add('number')
    else if (checker.isArrayType(part)) {
      kinds.add('list')
      const element = checker.getTypeArguments(part as ts.TypeReference)[0]!
      if (element.getProperties().length > 0 && !(element.flags & ts.TypeFlags.String))
        typeFields(checker, element, `${at}[]`, out)
    } else {
      kinds.add('mapping')
      if (!OPAQUE.has(at.split('.').pop()!))
        for (const prop of part.getProperties()) {
          const propType = checker.getTypeOfSymbol(prop)
          typeFields(
            checker,
            propType,
            at ? `${at}.${prop.name}` : prop.name,
            out,
            (prop.flags & ts.SymbolFlags.Optional) !== 0,
          )
        }
    }
  }
  if (literals.length > 0) kinds.add(literals.sort().join('|'))
  if (at && !at.endsWith('[]')) out[at] = `${[...kinds].sort().join(' ')}${optional ? '?' : ''}`
  return out
}

function policyType(): Fields {
  const program = ts.createProgram([POLICY_FILE], {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
  })
  const checker = program.getTypeChecker()
  const file = program.getSourceFile(POLICY_FILE)!
  const declaration = file.statements.find(
    (s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'Policy',
  )!
  return typeFields(checker, checker.getTypeAtLocation(declaration.name), '', {})
}

describe('the Policy type', () => {
  it("has exactly the policy schema's fields, each as optional and of the same kind", () => {
    expect(policyType()).toEqual(schemaFields(POLICY_SCHEMA as SchemaNode, '', {}))
  }, 30_000)
})
