// Request and response schemas compiled once, at boot, with Fastify's own compilers
// (@fastify/ajv-compiler for validation, fast-json-stringify for serialization).
import { AjvCompiler } from '@fastify/ajv-compiler'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import { KindGuard } from '@sinclair/typebox'
import type { WsxSchema } from '../../types/schema.js'

export interface SchemaError { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }
export type Validator = ((data: unknown) => boolean) & { errors?: SchemaError[] | null }
export type Serializer = (data: unknown) => string

// WebSocket data is typed JSON, so unlike HTTP querystrings nothing is coerced; extra
// keys on `additionalProperties: false` objects are refused rather than stripped, and all
// errors are reported so a client can fix every field at once (frames are size-capped).
// `unicode: false`: string lengths are UTF-16 units, as TypeBox itself counts them
// (`Value.Check`, its compiler), instead of walking every string for surrogate pairs on
// every message (that walk was most of a validation's cost on the hot path).
const messageAjvOptions = {
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: true,
  allErrors: true,
  unicode: false,
  // Ajv 8 marks `unicode` deprecated (it still works); say so once here, not at every boot
  logger: {
    log: console.log,
    warn: (...args: unknown[]) => { if (!String(args[0]).startsWith('DEPRECATED: option unicode')) console.warn(...args) },
    error: console.error
  }
}
const buildValidatorCompiler = AjvCompiler()({}, { customOptions: messageAjvOptions }) as
  (route: { schema: unknown, method: string, url: string, httpPart: string }) => Validator
const buildSerializerCompiler = SerializerSelector()({}, {}) as (route: { schema: unknown, method: string, url: string, httpStatus: string }) => Serializer

/**
 * A schema of either TypeBox line: `@sinclair/typebox` 0.34 marks its types with the `Kind`
 * symbol, `typebox` 1.x with a non-enumerable `~kind` string. Both are plain JSON Schema for
 * Ajv and fast-json-stringify; a bare JSON Schema is refused because nothing could infer
 * its types.
 */
export function isTypeBox (schema: unknown): schema is WsxSchema {
  if (KindGuard.IsSchema(schema)) return true
  return typeof schema === 'object' && schema !== null && typeof (schema as Record<string, unknown>)['~kind'] === 'string'
}

export function compileValidator (schema: WsxSchema, name: string): Validator {
  return buildValidatorCompiler({ schema, method: 'WS', url: name, httpPart: 'body' })
}

export function compileSerializer (schema: WsxSchema, name: string): Serializer {
  return buildSerializerCompiler({ schema, method: 'WS', url: name, httpStatus: '200' })
}

/** Ajv errors → the `fields` of a validation_error (docs/protocol.md#error-codes): dotted paths (`items.0.name`), `""` for the root. */
export function toFields (errs: SchemaError[] | null | undefined): Record<string, string[]> {
  const fields: Record<string, string[]> = {}
  for (const e of errs ?? []) {
    let path = e.instancePath.slice(1).split('/').map(unescapePointer).join('.')
    const child = e.keyword === 'required'
      ? e.params.missingProperty
      : e.keyword === 'additionalProperties' ? e.params.additionalProperty : undefined
    if (typeof child === 'string') path = path ? `${path}.${child}` : child
    const message = e.keyword === 'additionalProperties' ? 'Unknown field.' : capitalise(e.message ?? 'Invalid value.')
    const list = fields[path] ??= []
    if (!list.includes(message)) list.push(message)
  }
  return fields
}

function unescapePointer (part: string): string {
  return part.replace(/~1/g, '/').replace(/~0/g, '~')
}

function capitalise (s: string): string {
  const text = s.charAt(0).toUpperCase() + s.slice(1)
  return text.endsWith('.') ? text : text + '.'
}
