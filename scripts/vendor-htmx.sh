#!/usr/bin/env bash
# Copies htmx and its server-sent-events extension from their npm packages into
# web/static, where the binary embeds them: the admin UI must work on a machine with no
# internet, so nothing is loaded from a CDN. Rerun after changing a version here.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11
SSE_VERSION=2.2.4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$HTMX_VERSION" "htmx-ext-sse@$SSE_VERSION" >/dev/null)
tar -xzf "$tmp/htmx.org-$HTMX_VERSION.tgz" -C "$tmp" package/dist/htmx.min.js package/LICENSE
cp "$tmp/package/dist/htmx.min.js" web/static/htmx.min.js
cp "$tmp/package/LICENSE" web/static/htmx.LICENSE
rm -rf "$tmp/package"
tar -xzf "$tmp/htmx-ext-sse-$SSE_VERSION.tgz" -C "$tmp"
cp "$tmp/package/dist/sse.min.js" web/static/htmx-sse.min.js 2>/dev/null || cp "$tmp/package/sse.js" web/static/htmx-sse.min.js
printf 'htmx.org %s\nhtmx-ext-sse %s\n' "$HTMX_VERSION" "$SSE_VERSION" > web/static/VERSIONS
echo "vendored htmx $HTMX_VERSION and htmx-ext-sse $SSE_VERSION into web/static"
