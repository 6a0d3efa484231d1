#!/bin/sh
# plots/experiments.sh [RESULTS_ROOT] — the figures and tables of the paper's
# experiments (experiments/README.md) from what experiments/run.sh wrote under
# RESULTS_ROOT (default results/; results/long for `make experiments-long`):
# per experiment RESULTS_ROOT/NAME/NAME.png (+ table.md, the comparison with
# the paper, and the .dat files drawn), via plots/exp_data.py and plots/fig*.gp.
# Fig. 13's bad rate per second is binned from requests.csv with awk.
# Experiments without results are skipped. Needs gnuplot and python3.
set -e
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
root=${1:-results}
[ -d "$root" ] || { echo "experiments.sh: no $root" >&2; exit 1; }
drawn=""

draw() {  # draw NAME FIG: data + table, then the gnuplot script plots/FIG.gp
  d=$root/$1
  python3 "$here/exp_data.py" "$d" "$2" > /dev/null
  gnuplot -e "dir='$d'" "$here/$2.gp"
  drawn="$drawn $d/$2.png"
}

[ -d "$root/fig09_early_drop" ] && draw fig09_early_drop fig09
[ -f "$root/fig10_game/summary.json" ] || [ -d "$root/fig10_game/s1" ] && draw fig10_game fig10
[ -f "$root/fig10_game_resnet_only/summary.json" ] || [ -d "$root/fig10_game_resnet_only/s1" ] && \
  python3 "$here/exp_data.py" "$root/fig10_game_resnet_only" fig10r > /dev/null
[ -f "$root/fig11_traffic/summary.json" ] || [ -d "$root/fig11_traffic/s1" ] && draw fig11_traffic fig11
[ -d "$root/fig14_multiplex" ] && draw fig14_multiplex fig14
[ -d "$root/fig15_prefix" ] && draw fig15_prefix fig15
[ -d "$root/fig16_squishy" ] && draw fig16_squishy fig16
[ -d "$root/fig17_query_split" ] && draw fig17_query_split fig17
[ -d "$root/sensitivity" ] && python3 "$here/exp_data.py" "$root/sensitivity" sensitivity > /dev/null
for e in paper_era paper_era_dgx paper_era_gpu; do
  [ -d "$root/$e" ] && python3 "$here/exp_data.py" "$root/$e" era > /dev/null
done
d=$root/fig13_cluster100
if [ -f "$d/summary.json" ]; then
  # requests per second of arrival: all, and bad (dropped, late, unanswered)
  if [ -f "$d/requests.csv" ] && { [ ! -f "$d/fig13_bins.dat" ] || [ "$d/requests.csv" -nt "$d/fig13_bins.dat" ]; }; then
    awk -F, 'NR > 1 { t = int($4 / 1e6); n[t]++; if ($8 != "ok") b[t]++; if (t > m) m = t }
             END { print "# second queries bad"; for (t = 0; t <= m; t++) print t, n[t] + 0, b[t] + 0 }' \
      "$d/requests.csv" > "$d/fig13_bins.dat.tmp" && mv "$d/fig13_bins.dat.tmp" "$d/fig13_bins.dat"
  fi
  draw fig13_cluster100 fig13
fi
echo "experiment plots:$drawn"
