# Fig. 16: squishy vs batch-oblivious placement, 5 mixes. Variable: dir.
set terminal pngcairo size 1300,520 noenhanced
set output dir.'/fig16.png'
set multiplot layout 1,2 title 'Fig. 16: squishy bin packing vs batch-oblivious, 16 sessions, both with early drop'
set grid y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left font ',9'
set title '(a) throughput on 8 GPUs, squishy / batch-oblivious'
set ylabel 'relative throughput'
set yrange [0:2]
plot dir.'/fig16.dat' using 3:xtic(2) lc rgb '#1f77b4' title 'ours (H100 fp32)', \
     '' using 4 lc rgb '#bbbbbb' title 'paper (fig-read)', \
     1 with lines dt 2 lc rgb 'black' notitle
set title '(b) GPUs needed for 16,000 req/s (ours)'
set ylabel 'GPUs used'
set yrange [0:*]
plot dir.'/fig16.dat' using 5:xtic(2) lc rgb '#1f77b4' title 'squishy', \
     '' using 6 lc rgb '#ff7f0e' title 'batch-oblivious'
unset multiplot
