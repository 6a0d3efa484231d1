# Goodput and bad rate against offered rate (every probe of the max-rate
# search, or the single run). Variables: dir, names, n.
set terminal pngcairo size 1200,500 noenhanced
set output dir.'/sweep.png'
set multiplot layout 1,2
set grid
set key top left
set title 'Goodput against offered load'
set xlabel 'offered rate (req/s)'
set ylabel 'goodput (req/s)'
plot for [i=0:n-1] dir.'/sweep.dat' index i using 2:3 with linespoints lw 2 title word(names, i+1)
set title 'Bad rate against offered load (1 % target dashed)'
set ylabel 'bad rate (%)'
set logscale y
set yrange [0.01:100]
plot for [i=0:n-1] dir.'/sweep.dat' index i using 2:($4*100 < 0.01 ? 0.01 : $4*100) with linespoints lw 2 title word(names, i+1), \
     1 with lines dt 2 lc rgb 'black' title '1 %'
unset multiplot
