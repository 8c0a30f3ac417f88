import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'examples/chat/public/vendor/**'] }),
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
