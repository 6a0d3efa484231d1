#!/bin/sh
# plot.sh DIR — draw DIR/*.png from the data files nexus-sim wrote into DIR:
# latency CDF per policy, goodput and bad rate against offered rate, and GPUs
# used over time. Needs gnuplot (installed by `make deps`).
set -e
dir=${1:?usage: plots/plot.sh RESULTS_DIR}
here=$(dirname "$0")
[ -f "$dir/policies.txt" ] || { echo "plot.sh: $dir/policies.txt missing (run nexus-sim first)" >&2; exit 1; }
names=$(tr '\n' ' ' < "$dir/policies.txt")
n=$(wc -l < "$dir/policies.txt")
for gp in latency_cdf sweep timeline; do
  gnuplot -e "dir='$dir'; names='$names'; n=$n" "$here/$gp.gp"
done
echo "plots: $dir/latency_cdf.png $dir/sweep.png $dir/timeline.png"
