// Command weftprof is `weft server` (the same handlers.ServerParamsFromConfig,
// NewServer and Run as cmd/weft) with memory diagnostics for the scale benchmark:
// on SIGUSR1 it runs a GC and writes a heap profile to $WEFT_MEMPROFILE (default
// heap.pprof) and one line of runtime.MemStats to stderr. loadgen run -heap-signal
// sends SIGUSR1 at the end of the idle window. SIGUSR2 starts and stops a CPU profile
// to $WEFT_WINDOWPROFILE (loadgen run -idle-profile-signal: the idle window only).
//
//	weftprof server --config FILE
//	weftprof version
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"weft/config"
	"weft/handlers"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "version" {
		fmt.Println("weft (weftprof: weft server + heap profile on SIGUSR1)")
		return
	}
	if len(os.Args) != 4 || os.Args[1] != "server" || os.Args[2] != "--config" {
		fmt.Fprintln(os.Stderr, "usage: weftprof server --config FILE")
		os.Exit(2)
	}
	cfg, err := config.ParseServerFile(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	params, err := handlers.ServerParamsFromConfig(cfg, cfg.TLSEngine, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(1)
	}
	srv, err := handlers.NewServer(params)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			dump()
		}
	}()
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go toggleCPUProfile(usr2)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// toggleCPUProfile starts a CPU profile to $WEFT_WINDOWPROFILE (default
// window.pprof) on one SIGUSR2 and stops it on the next.
func toggleCPUProfile(sig <-chan os.Signal) {
	var f *os.File
	for range sig {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			f = nil
			fmt.Fprintln(os.Stderr, "CPU profile window stopped")
			continue
		}
		path := os.Getenv("WEFT_WINDOWPROFILE")
		if path == "" {
			path = "window.pprof"
		}
		var err error
		if f, err = os.Create(path); err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
				f = nil
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "CPU profile:", err)
		}
	}
}

func dump() {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(os.Stderr, "MEMSTATS goroutines=%d heap_alloc=%d heap_inuse=%d heap_idle=%d heap_released=%d stack_inuse=%d sys=%d mspan=%d mcache=%d gc_sys=%d other_sys=%d next_gc=%d num_gc=%d\n",
		runtime.NumGoroutine(), m.HeapAlloc, m.HeapInuse, m.HeapIdle, m.HeapReleased, m.StackInuse, m.Sys, m.MSpanInuse, m.MCacheInuse, m.GCSys, m.OtherSys, m.NextGC, m.NumGC)
	path := os.Getenv("WEFT_MEMPROFILE")
	if path == "" {
		path = "heap.pprof"
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
	}
}
