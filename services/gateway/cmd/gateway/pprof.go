//go:build pprof

package main

// Built only with -tags pprof (never in release images): a CPU-profile
// switch for bench/loadgen's -profile option. KEYWARD_PPROF_ADDR names a
// loopback address; POST /cpu/start?file=PATH begins a CPU profile written
// to PATH and POST /cpu/stop ends it, so a profile covers exactly one
// measured phase. POST /heap?file=PATH writes a heap profile (after a GC)
// to PATH: what is live, say with thousands of streams open; GET
// /goroutines lists the goroutines by stack.

import (
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
)

func init() {
	addr := os.Getenv("KEYWARD_PPROF_ADDR")
	if addr == "" {
		return
	}
	var (
		mu sync.Mutex
		f  *os.File
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		out, err := os.Create(r.URL.Query().Get("file"))
		if err == nil {
			if err = pprof.StartCPUProfile(out); err != nil {
				out.Close()
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f = out
	})
	mux.HandleFunc("POST /cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			f = nil
		}
	})
	mux.HandleFunc("POST /heap", func(w http.ResponseWriter, r *http.Request) {
		out, err := os.Create(r.URL.Query().Get("file"))
		if err == nil {
			runtime.GC()
			err = pprof.WriteHeapProfile(out)
			out.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("GET /goroutines", func(w http.ResponseWriter, r *http.Request) {
		_ = pprof.Lookup("goroutine").WriteTo(w, 1)
	})
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
