// Command weft is an OpenVPN-compatible VPN.
//
//	weft client --config FILE [--verb N] [--tls-engine go]
//	weft version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"weft/config"
	"weft/handlers"
	"weft/tlsengine"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  weft client --config FILE [--verb N] [--tls-engine NAME]
  weft version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "client":
		return runClient(args[1:], stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "weft %s\nTLS engines: %v\n", version(), tlsengine.Names())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "weft: unknown command %q\n%s", args[0], usage)
	return 2
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
}

// verbLevel maps OpenVPN's verb (0..11) to slog levels.
func verbLevel(verb int) slog.Level {
	switch {
	case verb <= 0:
		return slog.LevelError
	case verb <= 2:
		return slog.LevelWarn
	case verb <= 4:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

func runClient(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "OpenVPN client configuration file")
	verb := fs.Int("verb", -1, "log verbosity 0..11 (overrides the config's verb)")
	engine := fs.String("tls-engine", "", "TLS engine (default go)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "weft client: --config FILE is required")
		return 2
	}
	cfg, err := config.ParseClientFile(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "weft: config error: %v\n", err)
		return 1
	}
	v := cfg.Verb
	if *verb >= 0 {
		v = *verb
	}
	// verb 1..2 would hide connection progress; weft logs it at info from verb 1.
	level := verbLevel(v)
	if v >= 1 && level > slog.LevelInfo {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	params, err := handlers.ClientParamsFromConfig(cfg, *engine, log)
	if err != nil {
		log.Error("configuration error", "err", err)
		return 1
	}
	cl, err := handlers.NewClient(params)
	if err != nil {
		log.Error("configuration error", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cl.Run(ctx); err != nil {
		if errors.Is(err, handlers.ErrAuthFailed) {
			return 3
		}
		log.Error("client stopped", "err", err)
		return 1
	}
	return 0
}
