// The two TypeBox lines fastify-wsx takes, side by side: `@sinclair/typebox` 0.34 (re-exported
// as `Type`) and `typebox` 1.x (what `@fastify/type-provider-typebox` 6 builds on). Both
// produce plain JSON Schema at runtime; their static types are read here, once.
import type { Static as Static034, TSchema as TSchema034 } from '@sinclair/typebox'
import type { Static as Static1 } from 'typebox'

/** A schema built with `typebox` 1.x: every one of its types carries a `~kind` tag. */
export interface TypeBox1Schema {
  readonly '~kind': string
}

/** A TypeBox schema of either line: `@sinclair/typebox` 0.34 (`Type` from fastify-wsx) or `typebox` 1.x. */
export type WsxSchema = TSchema034 | TypeBox1Schema

/** The static type a schema of either TypeBox line describes; `unknown` for anything else. */
export type StaticOf<S> =
  [S] extends [TSchema034] ? Static034<S>
    : [S] extends [TypeBox1Schema] ? Static1<S>
        : unknown
