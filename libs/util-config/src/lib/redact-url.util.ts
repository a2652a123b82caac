/** Replaces a URL's `user:password@` (or `token@`) with `***@`; a URL without credentials is returned as is. */
export function redactUrl(url: string): string {
  return url.replace(/^(\s*(?:[a-z][a-z0-9+.-]*:\/\/)?)[^\s/@]+@/i, '$1***@');
}

/** {@link redactUrl} for each entry of a comma-separated server list (`NATS_URL`). */
export function redactUrls(urls: string): string {
  return urls.split(',').map(redactUrl).join(',');
}

/** Any `scheme://user:password@` inside free text (a log line, an error message) → `scheme://***@`. */
export function redactUrlsInText(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@');
}
