#!/bin/sh
# experiments/run.sh NAME [long] — run one of the paper's experiments
# (experiments/README.md) with build/bin/nexus-sim and write results/NAME/
# (results/long/NAME/ with "long"). NAME is a file experiments/NAME.yml or a
# directory experiments/NAME/ of variants (one results/NAME/VARIANT/ each).
# Called by `make experiments` / `make experiments-long` (mk/experiments.mk),
# which run several NAMEs in parallel. The NEXUS_SIM environment variable
# overrides the binary.
set -e
name=${1:?usage: experiments/run.sh NAME [long]}
mode=${2:-main}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
sim=${NEXUS_SIM:-build/bin/nexus-sim}
if [ "$mode" = long ]; then out=results/long/$name; else out=results/$name; fi
start=$(date +%s)

# sim EXP.yml OUTDIR [options]: one nexus-sim call, quiet, output checked
sim() {
  exp=$1 dir=$2; shift 2
  mkdir -p "$dir"
  if ! "$sim" "$exp" --out "$dir" --quiet "$@"; then
    echo "run.sh: $sim $exp --out $dir $* failed" >&2
    exit 1
  fi
}

# seeds: the main run uses few seeds, the long one more
seeds() { if [ "$mode" = long ]; then echo "$2"; else echo "$1"; fi; }

case $name in
  fig09_early_drop)
    # cheap (one GPU): every alpha, several seeds
    for f in experiments/$name/*.yml; do
      v=$(basename "$f" .yml)
      for s in $(seeds "1 2 3" "1 2 3 4 5 6 7 8 9 10"); do
        sim "$f" "$out/$v/s$s" --max-rate --no-requests --seed "$s"
      done
    done ;;
  sensitivity|paper_era|paper_era_dgx|paper_era_gpu)
    for f in experiments/$name/*.yml; do
      sim "$f" "$out/$(basename "$f" .yml)/s1" --max-rate --no-requests
    done ;;
  fig14_multiplex|fig15_prefix|fig16_squishy|fig17_query_split)
    for f in experiments/$name/*.yml; do
      v=$(basename "$f" .yml)
      for s in $(seeds "1 2 3" "1 2 3 4 5"); do
        sim "$f" "$out/$v/s$s" --max-rate --no-requests --seed "$s"
      done
    done
    # Fig. 16 also reports the GPUs each placement needs for a fixed load
    if [ -d "experiments/$name/need" ]; then
      for f in experiments/$name/need/*.yml; do
        sim "$f" "$out/need/$(basename "$f" .yml)/s1" --scale 2 --no-requests
      done
    fi ;;
  fig10_game|fig10_game_resnet_only|fig11_traffic)
    if [ "$mode" = long ]; then
      for s in 1 2 3; do
        sim "experiments/$name.yml" "$out/s$s" --max-rate --no-requests --seed "$s"
      done
    else
      sim "experiments/$name.yml" "$out" --max-rate --no-requests
    fi ;;
  fig13_cluster100)
    # one long run at the configured rates; requests.csv gives bad rate over time
    if [ "$mode" = long ]; then
      sim experiments/fig13_cluster100_long.yml "$out"
    else
      sim "experiments/$name.yml" "$out"
    fi ;;
  *)
    echo "run.sh: unknown experiment '$name'" >&2; exit 2 ;;
esac
# per-seed runs: keep their summary.json under git, not the plot data
if [ -d "$out" ] && ls -d "$out"/*/s[0-9]* > /dev/null 2>&1; then
  printf '# written by experiments/run.sh: per-seed plot data is not kept\n**/s[0-9]*/*.dat\n**/s[0-9]*/policies.txt\n' > "$out/.gitignore"
fi
echo "$name: $(( $(date +%s) - start )) s -> $out"
