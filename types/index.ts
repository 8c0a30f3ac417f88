export type * from './registry.js'
export type * from './route.js'
export type * from './options.js'
export type * from './schema.js'
