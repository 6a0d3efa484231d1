#!/usr/bin/env bash
# layering.sh — the layers, enforced: every #include "NAME" of every source file
# must name a header of a layer its directory may see (the table below, the same
# as the Makefile's per-directory include paths). engine/ sees only engine/;
# real/ never sees sim/. A header name found in two directories is an error too
# (with per-directory include paths it would be ambiguous). Fails listing every
# crossing as file:line.
set -u
cd "$(dirname "$0")/.."

# directory -> the directories whose headers it may include ("gen": protoc-c output)
declare -A SEES=(
  [engine]="engine"
  [policies]="engine policies"
  [io]="engine io"
  [sim]="engine policies io sim"
  [real/rpc]="engine real/rpc gen"
  [real/node]="engine policies io real/rpc real/node gen"
  [real/daemon]="engine policies io real/rpc real/node real/daemon real/dnn gen"
  [real/dnn]="engine real/dnn gen"
  [real/dnn/cuda]="engine real/dnn real/dnn/cuda"
)
DIRS="engine policies io sim real/rpc real/node real/daemon real/dnn real/dnn/cuda tests tests/real tests/dnn tools"

# header name -> its directory
declare -A HOME_OF=()
fail=0
for d in $DIRS; do
  for h in "$d"/*.h; do
    [ -f "$h" ] || continue
    n=$(basename "$h")
    if [ -n "${HOME_OF[$n]:-}" ]; then
      echo "layering: $n is in both ${HOME_OF[$n]}/ and $d/"; fail=1
    fi
    HOME_OF[$n]=$d
  done
done

checked=0
for d in "${!SEES[@]}"; do
  for f in "$d"/*.c "$d"/*.h "$d"/*.cu; do
    [ -f "$f" ] || continue
    while IFS=: read -r line inc; do
      n=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")
      checked=$((checked + 1))
      case "$n" in *.pb-c.h) home=gen ;; *) home=${HOME_OF[$n]:-} ;; esac
      if [ -z "$home" ]; then
        echo "layering: $f:$line: #include \"$n\": no such header in $DIRS"; fail=1; continue
      fi
      ok=0
      for s in ${SEES[$d]}; do [ "$s" = "$home" ] && ok=1; done
      if [ $ok = 0 ]; then
        echo "layering: $f:$line: $d/ includes $home/$n (it may see: ${SEES[$d]})"; fail=1
      fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
  done
done
[ $checked -gt 100 ] || { echo "layering: only $checked includes checked: the scan is broken"; exit 1; }
[ $fail = 0 ] && echo "layering: $checked includes in ${#SEES[@]} directories, none crosses a layer"
exit $fail
