package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"weft/config"
	"weft/handlers"
)

// Result is one run (one server, one transport); report reads these files.
type Result struct {
	Server    string    `json:"server"` // weft or openvpn
	Proto     string    `json:"proto"`
	Version   string    `json:"server_version"`
	Started   time.Time `json:"started"`
	LoadAvg   string    `json:"loadavg_at_start"`
	NumCPU    int       `json:"num_cpu"`
	N         int       `json:"n"`
	Conc      int       `json:"concurrency_limit"`
	Groups    string    `json:"client_tls_groups"`
	ServerPID int       `json:"-"`
	NoFile    uint64    `json:"rlimit_nofile"`
	Extra     []string  `json:"openvpn_only_config,omitempty"`

	Connect          *WaveResult `json:"connect"`
	ServerCPUConnect float64     `json:"server_cpu_connect_s"`
	ServerCPUPerHSms float64     `json:"server_cpu_per_handshake_ms"`
	LoadgenCPU       float64     `json:"loadgen_cpu_connect_s"`

	RSSStartKiB      int64   `json:"rss_start_kib"`
	RSSConnectedKiB  int64   `json:"rss_after_connect_kib"`
	RSSIdleEndKiB    int64   `json:"rss_idle_end_kib"`
	RSSPerClientKiB  float64 `json:"rss_per_client_kib"` // (idle end − start) / connected
	RSSPerClientConn float64 `json:"rss_per_client_after_connect_kib"`
	ThreadsIdle      int     `json:"server_threads_idle"`
	RSSAfterGCKiB    int64   `json:"rss_after_forced_gc_kib,omitempty"`
	RSSAfterSweepKiB int64   `json:"rss_after_sweep_kib,omitempty"`
	SweepClients     int     `json:"sweep_clients,omitempty"`
	RSSMarginalKiB   float64 `json:"rss_marginal_per_client_kib,omitempty"` // (after sweep − idle end) / sweep clients

	IdleSeconds      float64        `json:"idle_s"`
	IdleCPU          float64        `json:"idle_cpu_s"`
	IdleCPUPercent   float64        `json:"idle_cpu_percent"` // of one core
	ConnectedIdleEnd int64          `json:"connected_at_idle_end"`
	IdleDrops        int            `json:"idle_drops"`
	IdleDropReasons  map[string]int `json:"idle_drop_reasons,omitempty"`

	Sweep []sweepPoint `json:"sweep,omitempty"`

	SendErrors int    `json:"send_errors"`
	ServerLog  string `json:"server_log"`
	Profile    string `json:"cpu_profile,omitempty"`
	Error      string `json:"error,omitempty"`
}

type sweepPoint struct {
	*WaveResult
	ServerCPUPerHSms float64 `json:"server_cpu_per_handshake_ms"`
	ServerCPUPercent float64 `json:"server_cpu_percent"` // of one core, during the wave
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	kind := fs.String("server", "weft", "server under test: weft or openvpn")
	bin := fs.String("bin", "", "server binary (default bin/weft or /usr/sbin/openvpn)")
	proto := fs.String("proto", "udp", "udp or tcp")
	dir := fs.String("dir", "", "work directory holding pki/ (configs and logs go to DIR/<server>-<proto>/)")
	out := fs.String("out", "", "result JSON file")
	n := fs.Int("n", 1000, "clients to connect")
	conc := fs.Int("conc", 32, "handshakes in flight at most")
	tries := fs.Int("tries", 3, "attempts per client before it counts as failed")
	idle := fs.Duration("idle", 30*time.Second, "idle window for the CPU measurement")
	settle := fs.Duration("settle", 5*time.Second, "pause between connecting and the idle window")
	connectTimeout := fs.Duration("connect-timeout", 180*time.Second, "cap on the connect phase")
	sweep := fs.String("sweep", "", "comma-separated concurrencies for a handshake-rate sweep after the idle window")
	sweepN := fs.Int("sweep-n", 150, "clients per sweep wave (N + waves × sweep-n must stay below max-clients 2000)")
	port := fs.Int("port", 1194, "server port")
	shards := fs.Int("shards", runtime.NumCPU(), "load generator shards")
	groups := fs.String("groups", "X25519", "client TLS key-exchange groups (tls-groups syntax; \"\" = crypto/tls default, which adds X25519MLKEM768)")
	profile := fs.String("profile", "", "weft only: write the server's CPU profile here (WEFT_CPUPROFILE)")
	extra := fs.String("openvpn-extra", "default", "openvpn-only config lines, ';'-separated; \"default\": for UDP "+openvpnUDPExtra+" (weft's UDP listener uses 4 MiB socket buffers itself), none for TCP")
	verb := fs.Int("verb", 3, "server verb")
	heapSignal := fs.Bool("heap-signal", false, "send the server SIGUSR1 after the idle window (weftprof: GC + heap profile)")
	idleProfile := fs.Bool("idle-profile-signal", false, "send the server SIGUSR2 at the start and end of the idle window (weftprof: CPU profile of the window)")
	serverEnv := fs.String("server-env", "", "extra environment for the server, ';'-separated (e.g. GODEBUG=gctrace=1)")
	maxRuntime := fs.Duration("max-runtime", 10*time.Minute, "hard cap on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *out == "" {
		return fmt.Errorf("-dir and -out are required")
	}
	if *kind != "weft" && *kind != "openvpn" {
		return fmt.Errorf("-server must be weft or openvpn")
	}
	if *bin == "" {
		*bin = "bin/weft"
		if *kind == "openvpn" {
			*bin = "/usr/sbin/openvpn"
		}
	}
	absBin, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	// Hard cap: whatever happens, this process (and, by Pdeathsig, the server)
	// ends after max-runtime.
	startWatchdog(*maxRuntime)

	res := &Result{Server: *kind, Proto: *proto, Started: time.Now().UTC(), LoadAvg: loadAvg(),
		NumCPU: runtime.NumCPU(), N: *n, Conc: *conc, Groups: *groups}
	res.NoFile = raiseNoFile()
	defer func() {
		b, _ := json.MarshalIndent(res, "", "  ")
		_ = os.WriteFile(*out, b, 0o644)
	}()
	fail := func(err error) error { res.Error = err.Error(); return err }

	pki, _ := filepath.Abs(filepath.Join(*dir, "pki"))
	wd, _ := filepath.Abs(filepath.Join(*dir, *kind+"-"+*proto))
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return fail(err)
	}
	cp := confParams{PKI: pki, Proto: *proto, Port: *port, OpenVPN: *kind == "openvpn", MaxClients: 2000, Verb: *verb}
	if *extra == "default" {
		*extra = ""
		if *proto == "udp" {
			*extra = openvpnUDPExtra
		}
	}
	if *kind == "openvpn" && strings.TrimSpace(*extra) != "" {
		for _, l := range strings.Split(*extra, ";") {
			if l = strings.TrimSpace(l); l != "" {
				cp.OpenVPNOnly = append(cp.OpenVPNOnly, l)
			}
		}
		res.Extra = cp.OpenVPNOnly
	}
	sconf, cconf := filepath.Join(wd, "server.conf"), filepath.Join(wd, "client.conf")
	if err := writeTemplate(serverConf, sconf, cp); err != nil {
		return fail(err)
	}
	if err := writeTemplate(clientConf, cconf, cp); err != nil {
		return fail(err)
	}
	res.Version = serverVersion(*kind, absBin)

	// Client sessions: the weft client's own configuration path.
	ccfg, err := config.ParseClientFile(cconf)
	if err != nil {
		return fail(err)
	}
	params, err := handlers.ClientParamsFromConfig(ccfg, "", nil)
	if err != nil {
		return fail(err)
	}
	tc := *params.Session.TLSConfig
	tc.Groups = *groups
	params.Session.TLSConfig = &tc
	gcfg := genConfig{TCP: *proto == "tcp", Server: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(*port)),
		Session: params.Session, NewWrapper: params.NewWrapper, Shards: *shards}
	if gcfg.TCP {
		for i := 1; i <= 8; i++ {
			gcfg.SourceIPs = append(gcfg.SourceIPs, netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}))
		}
	}

	// Server.
	var env []string
	for _, e := range strings.Split(*serverEnv, ";") {
		if e = strings.TrimSpace(e); e != "" {
			env = append(env, e)
		}
	}
	if *kind == "weft" && *profile != "" {
		p, _ := filepath.Abs(*profile)
		env = append(env, "WEFT_CPUPROFILE="+p)
		res.Profile = p
	}
	res.ServerLog = filepath.Join(wd, "server.log")
	srv, err := startServer(*kind, absBin, sconf, res.ServerLog, env)
	if err != nil {
		return fail(err)
	}
	defer srv.stop(10 * time.Second)
	if err := srv.waitReady(30 * time.Second); err != nil {
		return fail(err)
	}
	pid := srv.pid()
	res.ServerPID = pid
	time.Sleep(time.Second)
	res.RSSStartKiB = procRSSKiB(pid)
	logf("%s-%s: server pid %d ready, RSS %d KiB; connecting %d clients (conc %d)", *kind, *proto, pid, res.RSSStartKiB, *n, *conc)

	g := newGen(gcfg)
	defer g.stop()

	// Connect phase.
	cpu0, self0 := procCPUSeconds(pid), selfCPUSeconds()
	res.Connect = g.runWave(*n, *conc, *tries, time.Now().Add(*connectTimeout))
	res.ServerCPUConnect = procCPUSeconds(pid) - cpu0
	res.LoadgenCPU = selfCPUSeconds() - self0
	if res.Connect.Connected > 0 {
		res.ServerCPUPerHSms = 1000 * res.ServerCPUConnect / float64(res.Connect.Connected)
	}
	logf("%s-%s: %s; server CPU %.2fs (%.2f ms/handshake), loadgen CPU %.2fs", *kind, *proto, res.Connect, res.ServerCPUConnect, res.ServerCPUPerHSms, res.LoadgenCPU)
	if len(res.Connect.FailReasons) > 0 {
		logf("%s-%s: failure reasons: %v", *kind, *proto, res.Connect.FailReasons)
	}
	if !srv.alive() {
		return fail(fmt.Errorf("server died during the connect phase; see %s", res.ServerLog))
	}

	// Idle phase.
	time.Sleep(*settle)
	res.RSSConnectedKiB = procRSSKiB(pid)
	if *idleProfile {
		_ = srv.cmd.Process.Signal(syscall.SIGUSR2)
	}
	c0, t0 := procCPUSeconds(pid), time.Now()
	time.Sleep(*idle)
	c1, t1 := procCPUSeconds(pid), time.Now()
	if *idleProfile {
		_ = srv.cmd.Process.Signal(syscall.SIGUSR2)
	}
	res.RSSIdleEndKiB = procRSSKiB(pid)
	res.ThreadsIdle = procThreads(pid)
	res.IdleSeconds = t1.Sub(t0).Seconds()
	res.IdleCPU = c1 - c0
	res.IdleCPUPercent = 100 * res.IdleCPU / res.IdleSeconds
	res.ConnectedIdleEnd = g.connected.Load()
	res.IdleDrops, res.IdleDropReasons = g.dropSummary()
	if k := res.Connect.Connected; k > 0 {
		res.RSSPerClientKiB = float64(res.RSSIdleEndKiB-res.RSSStartKiB) / float64(k)
		res.RSSPerClientConn = float64(res.RSSConnectedKiB-res.RSSStartKiB) / float64(k)
	}
	logf("%s-%s: idle %.0fs: server CPU %.2fs (%.2f%% of a core), RSS %d KiB (%.1f KiB/client), connected %d, drops %d",
		*kind, *proto, res.IdleSeconds, res.IdleCPU, res.IdleCPUPercent, res.RSSIdleEndKiB, res.RSSPerClientKiB, res.ConnectedIdleEnd, res.IdleDrops)

	if *heapSignal {
		_ = srv.cmd.Process.Signal(syscall.SIGUSR1)
		time.Sleep(2 * time.Second)
		res.RSSAfterGCKiB = procRSSKiB(pid)
	}

	// Handshake-rate sweep with the N clients still connected.
	var sweepConns []*attempt
	if *sweep != "" {
		for _, f := range strings.Split(*sweep, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || c <= 0 {
				continue
			}
			c0, t0 := procCPUSeconds(pid), time.Now()
			wr := g.runWave(*sweepN, c, *tries, time.Now().Add(*connectTimeout))
			sc := procCPUSeconds(pid) - c0
			sp := sweepPoint{WaveResult: wr, ServerCPUPercent: 100 * sc / time.Since(t0).Seconds()}
			if wr.Connected > 0 {
				sp.ServerCPUPerHSms = 1000 * sc / float64(wr.Connected)
			}
			res.Sweep = append(res.Sweep, sp)
			logf("%s-%s: sweep conc %d: %s; server CPU %.2f ms/handshake", *kind, *proto, c, wr, sp.ServerCPUPerHSms)
			// Sweep clients stay connected until the end: closing hundreds of UDP
			// sockets at once makes the server's later packets to them draw ICMP
			// port-unreachable errors, which openvpn (IP_RECVERR) turns into failed
			// sends to other clients, and the next wave would measure that.
			sweepConns = append(sweepConns, wr.connectedList...)
			time.Sleep(time.Second)
		}
	}

	if len(sweepConns) > 0 {
		time.Sleep(*settle)
		res.RSSAfterSweepKiB = procRSSKiB(pid)
		res.SweepClients = len(sweepConns)
		res.RSSMarginalKiB = float64(res.RSSAfterSweepKiB-res.RSSIdleEndKiB) / float64(len(sweepConns))
		logf("%s-%s: %d more clients: RSS %d KiB (marginal %.1f KiB/client)", *kind, *proto, len(sweepConns), res.RSSAfterSweepKiB, res.RSSMarginalKiB)
	}
	g.closeAll(append(res.Connect.connectedList, sweepConns...), 1500*time.Millisecond)
	g.mu.Lock()
	res.SendErrors = g.sendErrors
	g.mu.Unlock()
	if !srv.alive() {
		return fail(fmt.Errorf("server died; see %s", res.ServerLog))
	}
	return nil
}

// openvpnUDPExtra lifts openvpn's reply rate limit for initial UDP resets
// (connect-freq-initial, 100 per 10 s by default since 2.6.7) and gives its UDP
// socket the 4 MiB buffers weft's listener sets for itself: with the 208 KiB
// default, 64+ concurrent handshakes overflow it (UdpRcvbufErrors) and the
// run measures 2 s retransmission timeouts.
const openvpnUDPExtra = "connect-freq-initial 1000000 1;rcvbuf 4194304;sndbuf 4194304"

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func serverVersion(kind, bin string) string {
	var out []byte
	if kind == "weft" {
		out, _ = exec.Command(bin, "version").Output()
	} else {
		out, _ = exec.Command(bin, "--version").Output()
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
