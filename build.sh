#!/usr/bin/env bash
# Builds ccx:
#   dist/ccx.js  one JavaScript file (deno bundle, works offline); run it with `deno run -A dist/ccx.js`
#   dist/ccx     a single executable (deno compile), which needs Deno's runtime binary `denort`:
#                deno downloads it from its release site unless DENORT_BIN names a local copy.
# Exit status: 0 when both were built; 1 when the bundle failed; 3 when only the executable
# could not be built (dist/ccx.js is still there).
set -uo pipefail
cd "$(dirname "$0")"
command -v deno >/dev/null || npm install -g deno@2.9.6 || { echo "build.sh: deno is missing and npm could not install it" >&2; exit 1; }
out=${OUT_DIR:-dist}
mkdir -p "$out"

echo "build.sh: bundling main.ts into $out/ccx.js"
if ! deno bundle --quiet --platform deno -o "$out/ccx.js" main.ts; then
  echo "build.sh: deno bundle failed" >&2
  exit 1
fi

if [ -n "${SKIP_COMPILE:-}" ]; then
  echo "build.sh: SKIP_COMPILE set, not building $out/ccx"
  exit 0
fi
if [ -n "${DENORT_BIN:-}" ] && [ ! -x "$DENORT_BIN" ]; then
  echo "build.sh: DENORT_BIN=$DENORT_BIN is not an executable file" >&2
  exit 3
fi
echo "build.sh: compiling main.ts into $out/ccx${DENORT_BIN:+ with DENORT_BIN=$DENORT_BIN}"
log=$(mktemp)
if deno compile --quiet -A --output "$out/ccx" main.ts >"$log" 2>&1; then
  rm -f "$log"
  echo "build.sh: built $out/ccx and $out/ccx.js"
  exit 0
fi
echo "build.sh: deno compile could not build $out/ccx:" >&2
sed -n '1,6p' "$log" >&2
rm -f "$log"
cat >&2 <<MSG
build.sh: deno compile needs Deno's runtime binary (denort $(deno --version | head -1 | cut -d' ' -f2)),
which it downloads from Deno's release site; that site is not reachable from here.
Point DENORT_BIN at a local denort of the same version (unpacked from denort-x86_64-unknown-linux-gnu.zip),
e.g. DENORT_BIN=/opt/denort ./build.sh.  Meanwhile $out/ccx.js is built: deno run -A $out/ccx.js --help
MSG
exit 3
