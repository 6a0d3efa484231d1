# Fig. 13: 100 GPUs under changing rates: bad rate per second and GPUs used. Variable: dir.
set terminal pngcairo size 1100,700 noenhanced
set output dir.'/fig13.png'
set multiplot layout 2,1 title 'Fig. 13: 100-GPU cluster, seven apps, Poisson arrivals with rate changes'
set grid
set lmargin 10
set rmargin 10
set key top left font ',9'
set title 'offered load and bad rate per second'
set ylabel 'queries/s'
set y2label 'bad rate (%)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot dir.'/fig13_bins.dat' using 1:2 with lines lw 1.5 lc rgb '#1f77b4' title 'offered (queries/s)', \
     '' using 1:($2 > 0 ? 100.0 * $3 / $2 : 0) axes x1y2 with lines lw 1.5 lc rgb '#d62728' title 'bad rate (%)', \
     1 axes x1y2 with lines dt 2 lc rgb 'black' title '1 %'
set title 'GPUs used (of 100), per epoch'
set ylabel 'GPUs'
unset y2label
unset y2tics
set ytics mirror
set xlabel 'time (s)'
set yrange [0:100]
plot dir.'/fig13_gpus.dat' using 1:2 with steps lw 2 lc rgb '#2ca02c' title 'GPUs used', \
     '' using 1:2 with points pt 7 ps 0.6 lc rgb '#2ca02c' notitle
unset multiplot
