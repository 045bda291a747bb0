module github.com/keyward/keyward/deploy/live

go 1.26.8
