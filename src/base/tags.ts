/**
 * ARCHIVER_TAGS, `k=v` pairs separated by commas, checked as S3 checks object tags (S3 API reference, S3Tag):
 * keys of 1–128 and values of 0–256 Unicode characters, made of letters, digits and spaces of any script and
 * `_ . : / = + - @`; unique keys, none starting with `aws:` (reserved); at most 10 tags per object, of which
 * the archiver takes at most 9 (one left for lifecycle tooling). The first `=` of a pair ends its key.
 */
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const MAX_TAGS = 9;

/** What is wrong with ARCHIVER_TAGS, or undefined when S3 would accept every tag. */
export function tagsProblem(raw: string): string | undefined {
  const pairs = split(raw);
  if (pairs.length > MAX_TAGS) return `at most ${MAX_TAGS} tags (S3 allows 10 per object)`;
  const seen = new Set<string>();
  for (const pair of pairs) {
    const i = pair.indexOf("=");
    if (i < 0) return `"${pair}" is not a k=v pair`;
    const [k, v] = [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
    const chars = (s: string) => [...s].length;
    if (chars(k) < 1 || chars(k) > 128) return `tag key "${k}" must be 1 to 128 characters`;
    if (chars(v) > 256) return `the value of tag "${k}" is longer than 256 characters`;
    if (!TAG_CHARS.test(k) || !TAG_CHARS.test(v))
      return `tag "${pair}": S3 allows only letters, digits, spaces and _ . : / = + - @`;
    if (/^aws:/i.test(k)) return `tag key "${k}": the aws: prefix is reserved`;
    if (seen.has(k)) return `tag key "${k}" appears twice`;
    seen.add(k);
  }
  return undefined;
}

/** The tags as [key, value] pairs; `raw` must have passed tagsProblem. */
export function parseTags(raw: string): [string, string][] {
  return split(raw).map((pair) => {
    const i = pair.indexOf("=");
    return [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
  });
}

function split(raw: string): string[] {
  return raw
    .split(",")
    .map((kv) => kv.trim())
    .filter(Boolean);
}
