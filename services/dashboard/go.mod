module github.com/keyward/keyward/services/dashboard

go 1.26.8

require github.com/keyward/keyward/pkg v0.0.0

replace github.com/keyward/keyward/pkg => ../../pkg
