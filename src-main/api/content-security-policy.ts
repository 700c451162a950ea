/**
 * The renderer's Content-Security-Policy, sent as a header by the web server and the desktop app's app://
 * protocol (index.html carries the same policy in a meta tag, without frame-ancestors, which a meta tag
 * cannot set). Only the app's own scripts, styles and connections; no eval, no inline script, no plugins.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
