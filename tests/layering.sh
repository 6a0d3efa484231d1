#!/usr/bin/env bash
# layering.sh — the layers, enforced: every #include "NAME" of every source file
# must name a header of a layer its directory may see (the table below, the same
# as the Makefile's per-directory include paths). engine/ sees only engine/;
# real/ never sees sim/. A header name found in two directories is an error too
# (with per-directory include paths it would be ambiguous). Fails listing every
# crossing as file:line.
#
# It also keeps the layout honest: every directory with C sources must be in the
# table below (a new one would escape the scan), and README.md's Layout table
# must match the tree: its folder rows are exactly the top-level folders, and
# every file (name.ext) or folder (name/) a row names in backquotes exists in
# that row's folder (at that path, or for a bare file name anywhere under it).
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
  [traces]=""
)
DIRS="engine policies io sim real/rpc real/node real/daemon real/dnn real/dnn/cuda traces tests tests/real tests/dnn tools"

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

# --- the tree: tracked files when this is a git checkout, else what is on disk ---
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files)
else
  files=$(find . -path ./build -prune -o -path ./models -prune -o -path ./dist -prune -o \
               -type f -print | sed 's|^\./||')
fi

# every directory with C sources is scanned above
srcdirs=$(grep -E '\.(c|h|cu)$' <<<"$files" | awk -F/ -v OFS=/ '{ NF--; print NF ? $0 : "." }' | sort -u)
for d in $srcdirs; do
  case " $DIRS " in *" $d "*) ;; *)
    echo "layering: $d/ has C sources but is not in tests/layering.sh's table"; fail=1 ;; esac
done

# README.md's Layout table against the tree
rows=$(sed -n '/^## Layout$/,/^## /p' README.md | grep -E '^\| `[^`]+` \|')
nrows=$(grep -c . <<<"$rows")
[ "$nrows" -ge 10 ] || { echo "layering: README.md's Layout table not found ($nrows rows)"; exit 1; }
top=$(grep / <<<"$files" | cut -d/ -f1 | grep -v '^\.' | sort -u)   # hidden ones (.ci/) are not the project's layout
listed=$(sed -E 's/^\| `([^`]+)`.*/\1/' <<<"$rows")
for d in $top; do
  grep -qxF "$d/" <<<"$listed" || { echo "layering: README.md's Layout has no row for $d/"; fail=1; }
done
named=0
while IFS= read -r row; do
  home=$(sed -E 's/^\| `([^`]+)`.*/\1/' <<<"$row")
  home=${home%/}
  if [ ! -e "$home" ]; then echo "layering: README.md's Layout lists $home, which is not there"; fail=1; continue; fi
  [ -d "$home" ] || continue
  for tok in $(sed -E 's/^\| `[^`]+` \|//' <<<"$row" | grep -oE '`[^` ]+`' | tr -d '`'); do
    case "$tok" in
      */) ;;
      *.c|*.h|*.cu|*.py|*.sh|*.yml|*.yaml|*.gp|*.md|*.mk|*.proto) ;;
      *) continue ;;
    esac
    named=$((named + 1))
    grep -qxF "$tok" <<<"$listed" && continue   # another top-level folder ("never includes sim/")
    rel=${tok#"$home"/}
    [ -e "$home/$rel" ] && continue
    case "$rel" in */*) ;; *) [ -n "$(find "$home" -name "$rel" -print -quit)" ] && continue ;; esac
    echo "layering: README.md's Layout row $home/ names \`$tok\`, which is not there"; fail=1
  done
done <<<"$rows"
[ "$named" -ge 30 ] || { echo "layering: only $named names checked in README.md's Layout: the scan is broken"; exit 1; }
[ $fail = 0 ] && echo "layering: README.md's Layout: $nrows rows, the top-level folders and $named names it gives match the tree"
exit $fail
