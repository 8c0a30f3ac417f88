import neostandard from 'neostandard'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

/** Modules the browser-side code (protocol/, client/) must never import. */
const nodeAndServer = ['fastify', 'fastify/*', '@fastify/*', 'node:*', 'ws']

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'examples/chat/public/vendor/**'] }),
  {
    // arrows point one way: no module may reach itself again through its runtime imports
    // (type-only imports are erased at build and do not count)
    files: ['index.ts', 'protocol/**/*.ts', 'lib/**/*.ts', 'plugins/**/*.ts', 'testing/**/*.ts', 'client/**/*.ts', 'types/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js']
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] }
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      // lib/ is plain modules: it never reaches up into plugins/ or the root plugin.
      'no-restricted-imports': ['error', { patterns: ['../plugins/*', '../index.js', '../../index.js'] }]
    }
  },
  {
    // the playground page's script (plugins/playground.ts inlines it into the page): a
    // classic browser script, so no import or export, and the browser's globals
    files: ['plugins/playground/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', location: 'readonly', fetch: 'readonly', WebSocket: 'readonly' }
    }
  },
  {
    files: ['protocol/**/*.ts'],
    rules: {
      // the wire vocabulary is imported by the server and by the browser client: it reaches
      // nothing outside protocol/, and no Node, Fastify or ws module
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['../*'], message: 'protocol/ imports nothing outside protocol/' },
          { group: nodeAndServer, message: 'protocol/ runs in browsers too' }
        ]
      }]
    }
  },
  {
    files: ['client/**/*.ts'],
    rules: {
      // the client runs in browsers: no Fastify, no Node-only module, no server code. It may
      // import client/ and protocol/ at runtime, and the route types (types/) as types only
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          { group: ['../*', '!../protocol', '!../protocol/*', '!../types', '!../types/*'], message: 'client/ imports only client/, protocol/ and (as types) types/' },
          { group: ['../types', '../types/*'], allowTypeImports: true, message: 'client/ imports types/ as types only (import type)' },
          { group: nodeAndServer, message: 'the client runs in browsers' }
        ]
      }]
    }
  }
]
