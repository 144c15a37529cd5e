/** How the artifact browser previews a file, by its name (and size: big files are not fetched whole). */
export type PreviewKind = 'json' | 'text' | 'image' | 'html' | 'none';

const TEXT = /\.(txt|log|md|yaml|yml|csv|tsv|py|ts|js|sh|toml|ini|cfg|mlmodel|requirements|MLmodel)$/i;

export const PREVIEW_LIMIT_BYTES = 2 * 1024 * 1024;

export function previewKind(path: string, size?: number): PreviewKind {
  const name = path.split('/').pop() ?? path;
  if (/\.(png|jpe?g|gif|svg|webp)$/i.test(name))
    return size !== undefined && size > 20 * PREVIEW_LIMIT_BYTES ? 'none' : 'image';
  if (size !== undefined && size > PREVIEW_LIMIT_BYTES) return 'none';
  if (/\.html?$/i.test(name)) return 'html';
  if (/\.(json|jsonl|ndjson)$/i.test(name)) return 'json';
  if (TEXT.test(name) || name === 'MLmodel' || !name.includes('.')) return 'text';
  return 'none';
}

/** JSON pretty-printed; JSON lines shown as they are; anything unparsable as the raw text. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
