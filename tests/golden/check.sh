#!/usr/bin/env bash
# Golden simulations: each tests/golden/NAME.yml is run by nexus-sim (with --max-rate when the
# file has a search: section) and its summary.json compared byte for byte with
# tests/golden/NAME.summary.json. A change that moves a golden file updates it in the same
# commit, with the reason in the commit message:
#
#   tests/golden/check.sh --update      rewrite every NAME.summary.json from this build
#
# NX_BUILD (set by `make test`) names the build directory; default build.
set -u
cd "$(dirname "$0")/../.."
sim=${NX_BUILD:-build}/bin/nexus-sim
update=0; [ "${1:-}" = --update ] && update=1
[ -x "$sim" ] || { echo "golden: $sim is not built (make)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; n=0
for yml in tests/golden/*.yml; do
  name=$(basename "$yml" .yml)
  opt=(--no-requests --quiet); grep -q '^search:' "$yml" && opt+=(--max-rate)
  if ! "$sim" "$yml" --out "$tmp/$name" "${opt[@]}"; then
    echo "golden: $name: nexus-sim failed"; fail=1; continue
  fi
  gold=tests/golden/$name.summary.json; n=$((n + 1))
  if [ $update = 1 ]; then cp "$tmp/$name/summary.json" "$gold"; echo "golden: $name updated"; continue; fi
  if [ ! -f "$gold" ]; then echo "golden: $gold is missing (tests/golden/check.sh --update)"; fail=1; continue; fi
  if cmp -s "$tmp/$name/summary.json" "$gold"; then
    echo "golden: $name identical ($(wc -c < "$gold") bytes)"
  else
    echo "golden: $name DIFFERS from $gold:"; diff -u "$gold" "$tmp/$name/summary.json" | head -40; fail=1
  fi
done
[ $n -gt 0 ] || { echo "golden: no tests/golden/*.yml"; exit 1; }
exit $fail
