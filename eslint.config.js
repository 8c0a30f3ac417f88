import neostandard from 'neostandard'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

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
    files: ['client/**/*.ts'],
    rules: {
      // the client runs in browsers: no Fastify, no Node-only module, no server code
      'no-restricted-imports': ['error', { patterns: ['fastify', 'fastify/*', 'node:*', 'ws', '../lib/*', '../plugins/*', '../index.js'] }]
    }
  }
]
