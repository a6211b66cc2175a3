#!/usr/bin/env bash
# Fetch MathJax from the npm registry and install its browser bundle (the package's es5/ folder)
# into DEST, so the built book renders math without any CDN.
#
#   usage: bash tools/fetch_mathjax.sh VERSION DEST
#   e.g.   bash tools/fetch_mathjax.sh 3.2.2 book/_static/mathjax
#
# The bundle is unpacked into a staging folder next to DEST and only then renamed into place,
# so an interrupted run never leaves a half-filled DEST that later looks complete.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 VERSION DEST   (e.g. $0 3.2.2 book/_static/mathjax)" >&2
    exit 2
fi
version=$1
dest=${2%/}

if ! command -v npm >/dev/null 2>&1; then
    echo "fetch_mathjax: 'npm' is not installed; it is needed to download mathjax@$version" \
         "from the npm registry (Debian/Ubuntu: apt-get install npm)." >&2
    exit 1
fi

parent=$(dirname -- "$dest")
mkdir -p -- "$parent"
work=$(mktemp -d "${TMPDIR:-/tmp}/fetch_mathjax.XXXXXX")
stage=$(mktemp -d "$parent/.mathjax-staging.XXXXXX")   # same filesystem as DEST: mv is a rename
cleanup() { rm -rf -- "$work" "$stage"; }
trap cleanup EXIT

echo "fetch_mathjax: downloading mathjax@$version from the npm registry"
if ! tarball=$(cd "$work" && npm pack "mathjax@$version" --loglevel=error 2>"$work/npm.log"); then
    echo "fetch_mathjax: 'npm pack mathjax@$version' failed; npm said:" >&2
    sed 's/^/    /' "$work/npm.log" >&2
    echo "fetch_mathjax: check the version and that the npm registry" \
         "($(npm config get registry 2>/dev/null || echo unknown)) is reachable." >&2
    exit 1
fi
tarball=$(printf '%s\n' "$tarball" | tail -n 1)
if [[ ! -f "$work/$tarball" ]]; then
    echo "fetch_mathjax: npm reported '$tarball' but no such file was written in $work" >&2
    exit 1
fi

tar -xzf "$work/$tarball" -C "$stage" package/es5
if [[ ! -f "$stage/package/es5/tex-chtml.js" ]]; then
    echo "fetch_mathjax: mathjax@$version has no es5/tex-chtml.js (MathJax 3.x is expected)" >&2
    exit 1
fi

# Swap into place: move any old DEST aside first, then rename the new bundle in.
old=""
if [[ -e "$dest" ]]; then
    old="$stage/old"
    mv -- "$dest" "$old"
fi
mv -- "$stage/package/es5" "$dest"
echo "fetch_mathjax: installed MathJax $version ($(du -sh -- "$dest" | cut -f1)) into $dest"
