import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] }),
  {
    // TypeBox's idiom: a schema and its Static type share one name. TypeScript itself rejects real redeclarations.
    files: ['schemas/**/*.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' },
  },
  // Folders depend one way: the classifier knows nothing of HTTP, input or notifications; input knows
  // nothing of the workers or notifications; only workers/ (and the plugins and routes that wire the
  // app) bring them together. A wrong arrow fails `npm run lint` (test/unit/boundaries.test.ts shows it).
  {
    files: ['classifier/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ group: ['**/input/*', '**/notifications/*', '**/workers/*', '**/plugins/**', '**/routes/**'], message: 'classifier/ imports no HTTP input, notification, worker, plugin or route code.' }],
        paths: [{ name: 'fastify', message: 'classifier/ is not HTTP code.', allowTypeImports: true }],
      }],
    },
  },
  {
    files: ['input/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        // The two arrows to notifications/: sizes (how large a row may be to be announced: refused on
        // input, before it is answered) and row-text (the parsed body's text, kept for its announcement).
        patterns: [{ group: ['**/workers/*', '**/routes/**', '**/notifications/*', '!**/notifications/sizes.js', '!**/notifications/row-text.js'], message: 'input/ imports no worker, route or notification code.' }],
      }],
    },
  },
  {
    files: ['notifications/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ group: ['**/input/*', '**/workers/*', '**/routes/**'], message: 'notifications/ imports no input, worker or route code.' }],
      }],
    },
  },
  {
    // The dashboard's page script runs in the browser, as a classic script.
    files: ['dashboard/**/*.js'],
    languageOptions: { sourceType: 'script' },
  },
]
