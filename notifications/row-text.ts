/**
 * The JSON text of a split frame's rows, as the client sent them, so a notification can carry a row
 * without turning its ~80 numbers back into text: converting a double to its shortest text costs more
 * than everything else a grouped notification needs (see bench/README.md, "Notifications").
 *
 * The parser remembers the text it parsed (`rememberJsonText`); `rowTexts` finds the rows in it. A
 * frame that came from elsewhere (CSV, an MLflow wrapper, a test) has no text, and its rows are
 * written with JSON.stringify, as before. Both read back the same with JSON.parse.
 */

const texts = new WeakMap<object, string>()

/** Records that `body` was parsed from `text`, for `rowTexts`. */
export function rememberJsonText (body: unknown, text: string): void {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) texts.set(body, text)
}

/**
 * Each row of `frame.data` as the JSON text it was parsed from, or undefined when that text is not
 * known or not found with certainty (then the caller writes the rows itself).
 */
export function rowTexts (frame: { readonly data: readonly unknown[] }): readonly string[] | undefined {
  const text = texts.get(frame)
  const rows = text === undefined ? undefined : findRows(text)
  return rows?.length === frame.data.length ? rows : undefined
}

/**
 * The elements of the top-level object's last `"data"` array (JSON.parse keeps the last of repeated
 * keys), each as its text, when every element is an array. Visits only quotes, brackets, braces,
 * colons and escapes, which numbers have none of, and jumps over rows of numbers.
 */
export function findRows (text: string): string[] | undefined {
  const token = /\\[\s\S]|["[\]{}:]/g
  let depth = 0
  let inString = false
  let stringStart = 0
  let lastKey: string | undefined
  let inData = false
  let dataNext = false // the last token was the colon after a top-level "data" key
  let rowStart = -1
  let rows: string[] | undefined
  let current: string[] = []
  for (let match = token.exec(text); match !== null; match = token.exec(text)) {
    const found = match[0]
    const at = match.index
    if (found.length === 2) continue // an escape: only inside strings in valid JSON
    if (inString) {
      if (found !== '"') continue
      inString = false
      // A key of the top-level object when a colon follows (checked there).
      if (depth === 1) lastKey = text.slice(stringStart + 1, at)
      continue
    }
    const opensData = dataNext && found === '['
    dataNext = false
    if (found === '"') {
      inString = true
      stringStart = at
      continue
    }
    if (found === ':') {
      dataNext = depth === 1 && lastKey === 'data'
      continue
    }
    if (found === '[' || found === '{') {
      depth++
      if (opensData) {
        inData = true
        current = []
      }
      if (inData && depth === 3) {
        if (found !== '[') return undefined
        // A row of numbers, nulls and plain strings (no escape, no bracket) ends at the next ']' when
        // an even number of quotes comes before it: found by indexOf, which scans far faster than
        // matching the regular expression along the row.
        const end = text.indexOf(']', at)
        const inner = end === -1 ? '\\' : text.slice(at + 1, end)
        if (!inner.includes('\\') && !inner.includes('[') && !inner.includes('{') && evenQuotes(inner)) {
          current.push(text.slice(at, end + 1))
          depth--
          token.lastIndex = end + 1
          continue
        }
        rowStart = at
      }
    } else {
      if (inData && depth === 3) current.push(text.slice(rowStart, at + 1))
      depth--
      if (inData && depth === 1) {
        rows = current
        inData = false
      }
    }
  }
  return rows
}

function evenQuotes (text: string): boolean {
  let count = 0
  for (let at = text.indexOf('"'); at !== -1; at = text.indexOf('"', at + 1)) count++
  return count % 2 === 0
}
