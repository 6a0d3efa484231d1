# Fig. 14: several Inception copies on one GPU (plots/experiments.sh). Variable: dir.
set terminal pngcairo size 1300,520 noenhanced
set output dir.'/fig14.png'
set multiplot layout 1,2 title 'Fig. 14: GPU multiplexing, Inception copies on one GPU (solid: ours, left axis; dashed: paper fig-read, right axis)'
set grid
set key bottom left font ',9'
set ytics nomirror
set y2tics
set ylabel 'ours: throughput (req/s), H100 fp32'
set y2label 'paper: throughput (req/s)'
set yrange [0:*]
set y2range [0:*]
set title '(a) SLO 100 ms (ours 20 ms), 2-5 copies'
set xlabel 'copies of Inception'
set xtics 1
plot dir.'/fig14a.dat' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'Nexus', \
     '' using 1:3 with linespoints lw 2 pt 5 lc rgb '#ff7f0e' title 'TF-Serving-like', \
     '' using 1:4 with linespoints lw 2 pt 9 lc rgb '#2ca02c' title 'Clipper-like', \
     '' using 1:5 axes x1y2 with linespoints dt 2 pt 6 lc rgb '#1f77b4' title 'Nexus (paper)', \
     '' using 1:6 axes x1y2 with linespoints dt 2 pt 4 lc rgb '#ff7f0e' title 'TF Serving (paper)', \
     '' using 1:7 axes x1y2 with linespoints dt 2 pt 8 lc rgb '#2ca02c' title 'Clipper (paper)'
set title '(b) 3 copies, SLO 50-200 ms (ours / 5)'
set xlabel 'SLO in the paper (ms)'
set xtics 50
plot dir.'/fig14b.dat' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'Nexus', \
     '' using 1:3 with linespoints lw 2 pt 5 lc rgb '#ff7f0e' title 'TF-Serving-like', \
     '' using 1:4 with linespoints lw 2 pt 9 lc rgb '#2ca02c' title 'Clipper-like', \
     '' using 1:5 axes x1y2 with linespoints dt 2 pt 6 lc rgb '#1f77b4' title 'Nexus (paper)', \
     '' using 1:6 axes x1y2 with linespoints dt 2 pt 4 lc rgb '#ff7f0e' title 'TF Serving (paper)', \
     '' using 1:7 axes x1y2 with linespoints dt 2 pt 8 lc rgb '#2ca02c' title 'Clipper (paper)'
unset multiplot
