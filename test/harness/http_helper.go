package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// HTTPBody is what the HTTP helper answers: the prefix, then the request path.
const HTTPBody = "weft-http-ok "

func runHTTP(addr string, timeout time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("LISTENING %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, HTTPBody+r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	time.AfterFunc(timeout, func() { srv.Close() })
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// StartHTTP runs an HTTP server on addr inside namespace ns for at most timeout;
// it answers every request with HTTPBody followed by the path. It returns once the
// server listens, and is stopped in t.Cleanup.
func StartHTTP(t testing.TB, ns, addr string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	cmd, err := helperCmd(ctx, ns, "http", addr, 0, 0, timeout)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start HTTP helper: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "LISTENING") {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("HTTP helper on %s in %s failed: %s", addr, ns, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("HTTP helper on %s in %s did not start: %s", addr, ns, stderr.String())
	}
}
