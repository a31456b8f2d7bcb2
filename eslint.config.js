import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] }),
  {
    // TypeBox's idiom: a schema and its Static type share one name. TypeScript itself rejects real redeclarations.
    files: ['schemas/**/*.ts'],
    rules: { '@typescript-eslint/no-redeclare': 'off' },
  },
  {
    // The dashboard's page script runs in the browser, as a classic script.
    files: ['dashboard/**/*.js'],
    languageOptions: { sourceType: 'script' },
  },
]
