# Fig. 15: prefix batching with 1-10 ResNet-50 variants on one GPU. Variable: dir.
set terminal pngcairo size 1300,520 noenhanced
set output dir.'/fig15.png'
set multiplot layout 1,2 title 'Fig. 15: prefix batching, ResNet-50 variants differing in the last layer, one GPU'
set grid
set key bottom left font ',9'
set xlabel 'number of model variants'
set xtics 1
set title '(a) throughput at <= 1 % bad (solid: ours, left; dashed: paper fig-read, right)'
set ylabel 'ours: req/s (H100 fp32)'
set y2label 'paper: req/s'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot dir.'/fig15.dat' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'prefix batching', \
     '' using 1:3 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'separate models', \
     '' using 1:4 axes x1y2 with linespoints dt 2 pt 6 lc rgb '#1f77b4' title 'with PB (paper)', \
     '' using 1:5 axes x1y2 with linespoints dt 2 pt 4 lc rgb '#d62728' title 'without PB (paper)'
set title '(b) GPU memory of the plan'
set ylabel 'GB'
unset y2label
unset y2tics
set ytics mirror
set datafile missing '-'
set key top left
plot dir.'/fig15.dat' using 1:6 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'prefix batching (ours, H100 fp32)', \
     '' using 1:7 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'separate models (ours)', \
     '' using 1:8 with linespoints dt 2 pt 6 lc rgb '#1f77b4' title '1-FC suffixes (paper, fig-read)', \
     '' using 1:9 with linespoints dt 2 pt 4 lc rgb '#d62728' title 'without PB (paper; 11 GB GPU full at 7)'
unset multiplot
