/** URLs in logs, errors and banners. */

/** The URL with its password hidden (`postgres://app:***@db/x`); `(invalid URL)` when it is not one. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid URL)';
  }
}
