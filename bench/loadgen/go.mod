module github.com/keyward/keyward/bench/loadgen

go 1.26.8
