# Fig. 9: early drop vs lazy drop on one GPU (plots/experiments.sh). Variable: dir.
set terminal pngcairo size 900,560 noenhanced
set output dir.'/fig09.png'
set grid
set key bottom right
set title 'Fig. 9: throughput at <= 1 % bad, one GPU, l(b) = alpha*b + beta, SLO 100 ms, Poisson'
set xlabel 'alpha (ms per request)'
set ylabel 'throughput (req/s)'
set xrange [0.95:1.95]
set yrange [250:520]
plot dir.'/fig09.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '#1f77b4' title 'early drop (ours, min/max of seeds)', \
     '' using 1:5:6:7 with yerrorlines lw 2 pt 5 lc rgb '#d62728' title 'lazy drop (ours)', \
     '-' using 1:2 with linespoints dt 2 pt 6 lc rgb '#1f77b4' title 'early drop (paper, fig-read)', \
     '-' using 1:2 with linespoints dt 2 pt 4 lc rgb '#d62728' title 'lazy drop (paper, fig-read)', \
     500 with lines dt 3 lc rgb 'black' title 'optimum 500 req/s'
1.0 445
1.9 485
e
1.0 355
1.9 470
e
