// Command memprobe measures what one server-side OpenVPN session costs in memory,
// in process and without sockets: it runs K handshakes between weft client and
// server ovpn.Sessions (the scale benchmark's configuration: tls-crypt, EC P-256,
// TLS engine "go"), then closes the client sides and reports the server sessions'
// live heap, goroutine stacks and goroutines per session (after GC), plus a heap
// profile of what they keep (MemProfileRate 1).
//
//	go run ./bench/scale/memprobe [-k 500] [-heap mem.pprof]
//
// It covers the engine (ovpn.Session, reliable, datachan, controlwrap, the TLS
// engine and its goroutine); the server handler's per-peer state and socket
// buffers come on top (see bench/scale/run.sh for the whole process).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"weft/config"
	"weft/handlers"
	"weft/ovpn"
	"weft/test/harness"
	"weft/tlsengine"
)

// recEngine wraps an engine and remembers its sessions so they can be closed.
type recEngine struct {
	tlsengine.Engine
	mu   sync.Mutex
	sess []tlsengine.Session
}

func (e *recEngine) NewSession(cfg *tlsengine.Config) (tlsengine.Session, error) {
	s, err := e.Engine.NewSession(cfg)
	if err == nil {
		e.mu.Lock()
		e.sess = append(e.sess, s)
		e.mu.Unlock()
	}
	return s, err
}

func main() {
	k := flag.Int("k", 500, "sessions")
	heap := flag.String("heap", "", "write a heap profile of the live server sessions here")
	groups := flag.String("groups", "X25519", "client TLS groups")
	flag.Parse()
	runtime.MemProfileRate = 1
	if err := run(*k, *heap, *groups); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
}

func run(k int, heapPath, groups string) error {
	dir, err := os.MkdirTemp("", "memprobe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pki, err := harness.GeneratePKI(dir, harness.KeyEC)
	if err != nil {
		return err
	}
	common := fmt.Sprintf("ca %s\ncert %%s\nkey %%s\ntls-crypt %s\ndata-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\n", pki.CA, pki.StaticKey)
	srvConf := "proto udp\nport 1194\ndev tun\ntopology subnet\nserver 10.64.0.0 255.255.0.0\ndh none\nremote-cert-tls client\nkeepalive 10 60\nmax-clients 2000\nduplicate-cn\n" +
		fmt.Sprintf(common, pki.ServerCert, pki.ServerKey)
	cliConf := "client\ndev tun\nproto udp\nremote 127.0.0.1 1194\nnobind\nremote-cert-tls server\n" + fmt.Sprintf(common, pki.ClientCert, pki.ClientKey)
	sf, cf := filepath.Join(dir, "s.conf"), filepath.Join(dir, "c.conf")
	if err := os.WriteFile(sf, []byte(srvConf), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cf, []byte(cliConf), 0o600); err != nil {
		return err
	}
	scfg, err := config.ParseServerFile(sf)
	if err != nil {
		return err
	}
	sp, err := handlers.ServerParamsFromConfig(scfg, "", nil)
	if err != nil {
		return err
	}
	ccfg, err := config.ParseClientFile(cf)
	if err != nil {
		return err
	}
	cp, err := handlers.ClientParamsFromConfig(ccfg, "", nil)
	if err != nil {
		return err
	}
	tc := *cp.Session.TLSConfig
	tc.Groups = groups
	cp.Session.TLSConfig = &tc
	cliEng := &recEngine{Engine: cp.Session.TLS}
	cp.Session.TLS = cliEng

	measure := func() (runtime.MemStats, int) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m, runtime.NumGoroutine()
	}
	m0, g0 := measure()

	servers := make([]*ovpn.Session, 0, k)
	now := time.Now()
	for i := range k {
		ccfgS := cp.Session
		if ccfgS.Wrapper, err = cp.NewWrapper(); err != nil {
			return err
		}
		cs, err := ovpn.NewSession(ccfgS, now)
		if err != nil {
			return err
		}
		scfgS := sp.Session
		if scfgS.Wrapper, err = sp.NewWrapper(); err != nil {
			return err
		}
		scfgS.PeerID = int32(i)
		ip := fmt.Sprintf("10.64.%d.%d", (i+2)/256, (i+2)%256)
		scfgS.Authorize = func(*ovpn.ClientInfo) ([]string, error) {
			return []string{"route-gateway 10.64.0.1", "topology subnet", "ifconfig " + ip + " 255.255.0.0", "ping 10", "ping-restart 60"}, nil
		}
		ss, err := ovpn.NewSession(scfgS, now)
		if err != nil {
			return err
		}
		// Pump until both ends are connected (the client asks for the push after 1 s
		// of its clock unless the server pushes first; advance time if needed).
		for step := 0; step < 200 && !(cs.Connected() && ss.Connected()); step++ {
			moved := false
			for _, p := range cs.Outgoing() {
				ss.HandlePacket(now, append([]byte(nil), p...))
				moved = true
			}
			for _, p := range ss.Outgoing() {
				cs.HandlePacket(now, append([]byte(nil), p...))
				moved = true
			}
			if !moved {
				now = now.Add(100 * time.Millisecond)
				cs.Tick(now)
				ss.Tick(now)
			}
		}
		for _, e := range append(cs.Events(), ss.Events()...) {
			if e.Kind != ovpn.EventConnected {
				return fmt.Errorf("session %d: %s: %s", i, e.Kind, e.Reason)
			}
		}
		if !cs.Connected() || !ss.Connected() {
			return fmt.Errorf("session %d did not connect", i)
		}
		servers = append(servers, ss)
	}
	mPairs, gPairs := measure()
	// Drop the client sides: close their TLS sessions (their goroutines exit).
	cliEng.mu.Lock()
	for _, s := range cliEng.sess {
		s.Close()
	}
	cliEng.sess = nil
	cliEng.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	m1, g1 := measure()

	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(k) / 1024 }
	fmt.Printf("memprobe: %d server sessions (go TLS engine, tls-crypt, EC P-256, client groups %q)\n", k, groups)
	fmt.Printf("  client+server pairs: heap %.1f KiB, stacks %.1f KiB, %.2f goroutines per pair\n",
		per(mPairs.HeapAlloc, m0.HeapAlloc), per(mPairs.StackInuse, m0.StackInuse), float64(gPairs-g0)/float64(k))
	fmt.Printf("  server session alone: live heap %.1f KiB, goroutine stacks %.1f KiB, %.2f goroutines, heap objects %.0f per session\n",
		per(m1.HeapAlloc, m0.HeapAlloc), per(m1.StackInuse, m0.StackInuse), float64(g1-g0)/float64(k),
		(float64(m1.HeapObjects)-float64(m0.HeapObjects))/float64(k))
	fmt.Printf("  => %.1f KiB per session before GC headroom (RSS with GOGC=100 can reach about heap×2 + stacks)\n",
		per(m1.HeapAlloc, m0.HeapAlloc)+per(m1.StackInuse, m0.StackInuse))
	if heapPath != "" {
		f, err := os.Create(heapPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
		fmt.Printf("  heap profile: %s (go tool pprof -sample_index=inuse_space -top %s)\n", heapPath, strings.TrimSpace(heapPath))
	}
	runtime.KeepAlive(servers)
	return nil
}
