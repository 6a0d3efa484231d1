# fidelity.gp — sim against real over a load sweep (real/fidelity_report.py's NAME.dat):
# one row per experiment: goodput, bad rate and p99 latency against the offered load in per
# cent of the simulated max rate; lines: simulated, points: real (p99 as the frontend
# measures it, the simulator's definition; crosses: at the client).
#   gnuplot -e "dir='results/fidelity-h100'; names='mix game fig14'" plots/fidelity.gp
if (!exists("dir")) dir = "results/fidelity-h100"
if (!exists("names")) names = "mix game fig14"
if (!exists("title")) title = "nexus-sim (lines) against nexus-cluster with the CUDA executor (points)"
n = words(names)
set terminal pngcairo size 1500, 380 * n font ",10" noenhanced
set output dir . "/fidelity.png"
set multiplot layout n, 3 title title
set grid
set key top left
set xlabel "offered load (% of the simulated max rate)"
do for [i = 1:n] {
    f = dir . "/" . word(names, i) . ".dat"
    set ylabel "queries/s"
    set title word(names, i) . ": goodput"
    plot f u 1:3 w l lw 2 t "sim", f u 1:4 w p pt 7 ps 1.2 t "real"
    set ylabel "%"
    set title word(names, i) . ": bad rate"
    plot f u 1:5 w l lw 2 t "sim", f u 1:6 w p pt 7 ps 1.2 t "real"
    set ylabel "ms"
    set title word(names, i) . ": p99 latency"
    plot f u 1:9 w l lw 2 t "sim", f u 1:10 w p pt 7 ps 1.2 t "real (frontend)", \
         f u 1:11 w p pt 2 ps 1.2 t "real (client)"
}
unset multiplot
