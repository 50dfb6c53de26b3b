// Command weft is an OpenVPN-compatible VPN.
//
//	weft client --config FILE [--verb N] [--tls-engine NAME]
//	weft server --config FILE [--verb N] [--tls-engine NAME]
//	weft version
//
// --tls-engine overrides the configuration's tls-engine directive. Exit codes:
// 0 after a clean shutdown on SIGTERM/SIGINT, 1 for errors (bad configuration,
// fatal run-time errors), 2 for usage errors, 3 when a client's authentication
// failed (AUTH_FAILED).
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
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"weft/config"
	"weft/handlers"
	"weft/internal/demo"
	"weft/node"
	"weft/tlsengine"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  weft client --config FILE [--verb N] [--tls-engine NAME]
  weft server --config FILE [--verb N] [--tls-engine NAME]
  weft demo [--clients N] [--duration D] [--bulk-mib N]
  weft version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if path := os.Getenv("WEFT_CPUPROFILE"); path != "" {
		// CPU profile for benchmarks: written until weft exits.
		if f, err := os.Create(path); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			} else {
				f.Close()
				fmt.Fprintf(stderr, "weft: cpu profile: %v\n", err)
			}
		} else {
			fmt.Fprintf(stderr, "weft: cpu profile: %v\n", err)
		}
	}
	switch args[0] {
	case "client":
		return runClient(args[1:], stderr)
	case "server":
		return runServer(args[1:], stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
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

// commonFlags are the flags of the client and server commands.
type commonFlags struct {
	fs        *flag.FlagSet
	config    *string
	verb      *int
	engine    *string
	userspace *bool
	command   string
}

func newFlags(command string, stderr io.Writer) *commonFlags {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &commonFlags{
		fs:      fs,
		command: command,
		config:  fs.String("config", "", "OpenVPN "+command+" configuration file"),
		verb:    fs.Int("verb", -1, "log verbosity 0..11 (overrides the config's verb)"),
		engine:  fs.String("tls-engine", "", "TLS engine (overrides the config's tls-engine; default go)"),
		userspace: fs.Bool("userspace", false, "run on a user-space TCP/IP stack: no root, no TUN "+
			"(reach the tunnel through socks-listen, forward and reverse-forward)"),
	}
}

// parse parses args; ok is false after a usage error (exit code 2).
func (f *commonFlags) parse(args []string, stderr io.Writer) bool {
	if err := f.fs.Parse(args); err != nil {
		return false
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "weft %s: unexpected argument %q\n", f.command, f.fs.Arg(0))
		return false
	}
	if *f.config == "" {
		fmt.Fprintf(stderr, "weft %s: --config FILE is required\n", f.command)
		return false
	}
	return true
}

// logger returns the logger for a configuration's verb (or --verb), and logs
// the configuration's warnings.
func (f *commonFlags) logger(stderr io.Writer, cfgVerb int, warnings []string) *slog.Logger {
	v := cfgVerb
	if *f.verb >= 0 {
		v = *f.verb
	}
	// verb 1..2 would hide connection progress; weft logs it at info from verb 1.
	level := verbLevel(v)
	if v >= 1 && level > slog.LevelInfo {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range warnings {
		if *f.userspace && strings.HasSuffix(w, "has no effect without userspace") {
			continue
		}
		log.Warn(w)
	}
	return log
}

// tlsEngine returns the engine to use: --tls-engine, else the config's tls-engine.
func (f *commonFlags) tlsEngine(fromConfig string) string {
	if *f.engine != "" {
		return *f.engine
	}
	return fromConfig
}

func runClient(args []string, stderr io.Writer) int {
	f := newFlags("client", stderr)
	if !f.parse(args, stderr) {
		return 2
	}
	cfg, err := config.ParseClientFile(*f.config)
	if err != nil {
		fmt.Fprintf(stderr, "weft: config error: %v\n", err)
		return 1
	}
	log := f.logger(stderr, cfg.Verb, cfg.Warnings)
	if cfg.Userspace || *f.userspace {
		return runUserspace(cfg, nil, f, log)
	}
	params, err := handlers.ClientParamsFromConfig(cfg, f.tlsEngine(cfg.TLSEngine), log)
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

func runServer(args []string, stderr io.Writer) int {
	f := newFlags("server", stderr)
	if !f.parse(args, stderr) {
		return 2
	}
	cfg, err := config.ParseServerFile(*f.config)
	if err != nil {
		fmt.Fprintf(stderr, "weft: config error: %v\n", err)
		return 1
	}
	log := f.logger(stderr, cfg.Verb, cfg.Warnings)
	if cfg.Userspace || *f.userspace {
		return runUserspace(nil, cfg, f, log)
	}
	params, err := handlers.ServerParamsFromConfig(cfg, f.tlsEngine(cfg.TLSEngine), log)
	if err != nil {
		log.Error("configuration error", "err", err)
		return 1
	}
	srv, err := handlers.NewServer(params)
	if err != nil {
		log.Error("configuration error", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	log.Info("server stopped")
	return 0
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clients := fs.Int("clients", 4, "number of clients (alternating UDP/IPv4, TCP/IPv4, UDP/IPv6)")
	duration := fs.Duration("duration", 10*time.Second, "length of the traffic phase")
	bulk := fs.Int("bulk-mib", 16, "size of each client-to-client transfer in MiB")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := demo.Run(ctx, demo.Options{Clients: *clients, Duration: *duration, BulkMiB: *bulk, Out: stdout}); err != nil {
		fmt.Fprintf(stderr, "weft demo: %v\n", err)
		return 1
	}
	return 0
}

// runUserspace runs a client or a server on the user-space stack, with its SOCKS5
// server (clients: socks-listen, default 127.0.0.1:1080) and forwards.
func runUserspace(cc *config.Client, sc *config.Server, f *commonFlags, log *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		n        *node.Node
		err      error
		common   *config.Common
		socks    string
		isClient = cc != nil
	)
	if isClient {
		common = &cc.Common
		n, err = node.StartClient(ctx, cc, node.Options{TLSEngine: f.tlsEngine(cc.TLSEngine), Logger: log})
		socks = cc.SocksListen
		if socks == "" {
			socks = "127.0.0.1:1080"
		}
	} else {
		common = &sc.Common
		n, err = node.StartServer(ctx, sc, node.Options{TLSEngine: f.tlsEngine(sc.TLSEngine), Logger: log})
		socks = sc.SocksListen
	}
	if err != nil {
		log.Error("configuration error", "err", err)
		return 1
	}
	defer n.Close()
	if socks != "" {
		addr, err := n.ServeSOCKS5(ctx, socks)
		if err != nil {
			log.Error("SOCKS5 server", "err", err)
			return 1
		}
		log.Info("SOCKS5 server listening (connections go through the tunnel)", "addr", addr.String())
	}
	if err := n.StartForwards(ctx, common.Forwards, common.ReverseForwards); err != nil {
		log.Error("forward", "err", err)
		return 1
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			if err := n.Close(); err != nil && !errors.Is(err, handlers.ErrAuthFailed) {
				log.Error("stopped", "err", err)
				return 1
			}
			return 0
		case ev := <-n.Events():
			if ev.Kind == node.EventAuthFailed {
				n.Close()
				return 3
			}
			if ev.Kind == node.EventClosed {
				if err := n.Close(); err != nil {
					log.Error("stopped", "err", err)
				}
				return 1
			}
		}
	}
}
