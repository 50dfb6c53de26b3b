package test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"weft/test/harness"
)

// TestDemo is `make demo`: an openvpn 2.6 server in one namespace, the weft
// client in another; it shows the tunnel working and prints a summary (handshake
// time, ping RTT, throughput).
func TestDemo(t *testing.T) {
	kind, bin := clientUnderTest(t)
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{})
	cli.MustUp(t)
	for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
		if err := harness.WaitPing(pair.Client, a, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p4, err4 := harness.Ping(pair.Client, harness.TunServerV4, 10, "0.2")
	p6, err6 := harness.Ping(pair.Client, harness.TunServerV6, 10, "0.2")
	if err4 != nil || err6 != nil {
		t.Errorf("ping: %v %v", err4, err6)
	}
	const size = 64 << 20
	tr, errT := harness.BulkTransfer(pair, harness.TunServerV4+":5001", size, 2*time.Minute)
	if errT != nil {
		t.Errorf("bulk transfer: %v", errT)
	}
	cipher := "?"
	if l, ok := harness.FindLine(srv.LogText(), "Incoming Data Channel: Cipher"); ok {
		if i := strings.Index(l, "Cipher '"); i >= 0 {
			cipher = strings.SplitN(l[i+8:], "'", 2)[0]
		}
	}
	exited, code := cli.Stop(10 * time.Second)
	een := srv.HasLog(exitNotifySubstr) || harness.WaitFor(5*time.Second, 100*time.Millisecond, func() bool {
		return srv.HasLog(exitNotifySubstr) || srv.HasLog(occExitSubstr)
	})

	w := os.Stdout
	fmt.Fprintf(w, "\n==================== weft demo ====================\n")
	fmt.Fprintf(w, "  server        openvpn 2.6 in netns %s (%s:1194)\n", pair.Server, pair.ServerV4)
	fmt.Fprintf(w, "  client        %s in netns %s\n", kind, pair.Client)
	fmt.Fprintf(w, "  transport     UDP/IPv4, tls-crypt, data cipher %s\n", cipher)
	fmt.Fprintf(w, "  handshake     %s (start to tunnel up)\n", fmtDur(cli.HandshakeTime()))
	fmt.Fprintf(w, "  ping v4       10.8.0.1   %d/%d, avg RTT %s\n", p4.Received, p4.Transmitted, fmtDur(p4.AvgRTT))
	fmt.Fprintf(w, "  ping v6       fd00:8::1  %d/%d, avg RTT %s\n", p6.Received, p6.Transmitted, fmtDur(p6.AvgRTT))
	if errT == nil {
		fmt.Fprintf(w, "  bulk TCP      %d MiB in %s = %.0f Mbit/s, sha256 verified\n", tr.Bytes>>20, fmtDur(tr.Elapsed), tr.Throughput)
	} else {
		fmt.Fprintf(w, "  bulk TCP      FAILED: %v\n", errT)
	}
	fmt.Fprintf(w, "  exit          SIGTERM -> exited=%v code=%d, server saw exit notification: %v\n", exited, code, een)
	fmt.Fprintf(w, "===================================================\n\n")
}
