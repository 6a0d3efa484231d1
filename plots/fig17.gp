# Fig. 17: the query SLO split (DP) vs even split. Variable: dir.
set terminal pngcairo size 1000,520 noenhanced
set output dir.'/fig17.png'
set grid y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set title 'Fig. 17: SSD -> gamma x Inception, 8 GPUs: throughput with the split DP / with an even split'
set xlabel 'SLO in the paper (ms) / gamma'
set ylabel 'relative throughput'
set yrange [0:1.8]
plot dir.'/fig17.dat' using 2:xtic(1) lc rgb '#1f77b4' title 'ours (H100 fp32, SLO / 10)', \
     '' using 3 lc rgb '#bbbbbb' title 'paper (fig-read)', \
     1 with lines dt 2 lc rgb 'black' notitle
