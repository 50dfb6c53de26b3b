package harness

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tunnel addresses of the openvpn server (topology subnet, §18.3).
const (
	TunServerV4 = "10.8.0.1"
	TunServerV6 = "fd00:8::1"
)

// PingResult is a parsed ping summary.
type PingResult struct {
	Transmitted, Received int
	Loss                  float64 // percent
	AvgRTT                time.Duration
	Output                string
}

var (
	pingCountRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingRTTRE   = regexp.MustCompile(`= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms`)
)

// Ping runs ping inside ns. interval is ping's -i value ("" for the default
// 1 s). The error is non-nil if ping could not run or nothing came back.
func Ping(ns, addr string, count int, interval string) (PingResult, error) {
	iv := 1.0
	if interval != "" {
		iv, _ = strconv.ParseFloat(interval, 64)
	}
	// -w (not -W): with -c, ping then waits for count replies until the
	// deadline instead of giving up on late replies after 2×RTT, which made
	// cases flaky on a loaded 2-core machine.
	deadline := int(float64(count)*iv) + 2
	if count > 1 {
		deadline += 3
	}
	args := []string{"ping", "-n", "-c", strconv.Itoa(count), "-w", strconv.Itoa(deadline)}
	if strings.Contains(addr, ":") {
		args = append(args, "-6")
	}
	if interval != "" {
		args = append(args, "-i", interval)
	}
	args = append(args, addr)
	timeout := time.Duration(deadline)*time.Second + 10*time.Second
	out, err := Run(timeout, NSExec(ns, args...)...)
	r := PingResult{Output: out}
	if m := pingCountRE.FindStringSubmatch(out); m != nil {
		r.Transmitted, _ = strconv.Atoi(m[1])
		r.Received, _ = strconv.Atoi(m[2])
		if r.Transmitted > 0 {
			r.Loss = 100 * float64(r.Transmitted-r.Received) / float64(r.Transmitted)
		}
	}
	if m := pingRTTRE.FindStringSubmatch(out); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		r.AvgRTT = time.Duration(ms * float64(time.Millisecond))
	}
	if err != nil || r.Received == 0 {
		return r, fmt.Errorf("ping %s from %s: %d/%d received: %v", addr, ns, r.Received, r.Transmitted, err)
	}
	return r, nil
}

// WaitPing pings addr from ns once a second until a reply arrives or timeout.
func WaitPing(ns, addr string, timeout time.Duration) error {
	var last error
	ok := WaitFor(timeout, 200*time.Millisecond, func() bool {
		_, last = Ping(ns, addr, 1, "")
		return last == nil
	})
	if !ok {
		return fmt.Errorf("no ping reply within %v: %w", timeout, last)
	}
	return nil
}

// PingSteady waits up to 10 s for a first reply from addr in ns, then requires 3
// of 3 replies (with one retry after a second: the labs share 2 cores).
func PingSteady(ns, addr string) error {
	if err := WaitPing(ns, addr, 10*time.Second); err != nil {
		return err
	}
	r, err := Ping(ns, addr, 3, "0.2")
	if err != nil || r.Received != r.Transmitted {
		time.Sleep(time.Second)
		r, err = Ping(ns, addr, 3, "0.2")
	}
	if err != nil {
		return err
	}
	if r.Received != r.Transmitted {
		return fmt.Errorf("ping %s from %s: %d/%d received", addr, ns, r.Received, r.Transmitted)
	}
	return nil
}

// Helper-process protocol: the test binary re-executes itself with
// -test.run=^TestHelperProcess$ and these environment variables; the test
// package's TestHelperProcess calls HelperMain.
const (
	HelperEnv        = "WEFT_TEST_HELPER" // "sink" or "source"
	helperAddrEnv    = "WEFT_TEST_HELPER_ADDR"
	helperBytesEnv   = "WEFT_TEST_HELPER_BYTES"
	helperTimeoutEnv = "WEFT_TEST_HELPER_TIMEOUT"
	helperSeedEnv    = "WEFT_TEST_HELPER_SEED"
)

// IsHelper reports whether this process was started as a traffic helper.
func IsHelper() bool { return os.Getenv(HelperEnv) != "" }

// HelperMain runs the traffic helper named by $WEFT_TEST_HELPER and returns the
// process exit code. Output is line-oriented on stdout:
//
//	sink:   "LISTENING <addr>" then "RESULT sha256=<hex> bytes=<n>"
//	source: "RESULT sha256=<hex> bytes=<n> elapsed_ns=<n>"
func HelperMain() int {
	timeout, err := time.ParseDuration(os.Getenv(helperTimeoutEnv))
	if err != nil {
		timeout = time.Minute
	}
	// Bound our own lifetime no matter what.
	time.AfterFunc(timeout+5*time.Second, func() {
		fmt.Fprintln(os.Stderr, "helper: hard timeout")
		os.Exit(3)
	})
	addr := os.Getenv(helperAddrEnv)
	switch os.Getenv(HelperEnv) {
	case "sink":
		err = runSink(addr, timeout)
	case "http":
		err = runHTTP(addr, timeout)
	case "source":
		n, _ := strconv.ParseInt(os.Getenv(helperBytesEnv), 10, 64)
		seed, _ := strconv.ParseUint(os.Getenv(helperSeedEnv), 10, 64)
		err = runSource(addr, n, seed, timeout)
	default:
		err = fmt.Errorf("unknown helper %q", os.Getenv(HelperEnv))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func runSink(addr string, timeout time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Printf("LISTENING %s\n", ln.Addr())
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
	conn, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	h := sha256.New()
	n, err := io.Copy(h, conn)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	fmt.Printf("RESULT sha256=%s bytes=%d\n", hex.EncodeToString(h.Sum(nil)), n)
	return nil
}

func runSource(addr string, n int64, seed uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	var err error
	for {
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
	}
	rng := rand.NewChaCha8(key)
	h := sha256.New()
	buf := make([]byte, 64*1024)
	start := time.Now()
	var sent int64
	for sent < n {
		chunk := buf
		if rem := n - sent; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		_, _ = rng.Read(chunk)
		h.Write(chunk)
		w, err := conn.Write(chunk)
		sent += int64(w)
		if err != nil {
			return fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	// Wait for the sink to close (it has read everything).
	_, _ = io.Copy(io.Discard, conn)
	fmt.Printf("RESULT sha256=%s bytes=%d elapsed_ns=%d\n", hex.EncodeToString(h.Sum(nil)), sent, time.Since(start).Nanoseconds())
	return nil
}

// TransferResult is the outcome of a bulk transfer.
type TransferResult struct {
	Bytes      int64
	SHA256     string
	Elapsed    time.Duration // source's connect-to-close time
	Throughput float64       // Mbit/s
}

var resultRE = regexp.MustCompile(`RESULT sha256=([0-9a-f]+) bytes=(\d+)(?: elapsed_ns=(\d+))?`)

func helperCmd(ctx context.Context, ns, role, addr string, n int64, seed uint64, timeout time.Duration) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := NSExec(ns, self, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(),
		HelperEnv+"="+role, helperAddrEnv+"="+addr,
		helperBytesEnv+"="+strconv.FormatInt(n, 10),
		helperSeedEnv+"="+strconv.FormatUint(seed, 10),
		helperTimeoutEnv+"="+timeout.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// BulkTransfer sends size bytes of pseudo-random data over TCP from the client
// namespace to a sink listening on dst (e.g. "10.8.0.1:5001" or
// "[fd00:8::1]:5001") in the server namespace, and checks that the sink's
// sha256 and length match what the source sent. Both helpers are bounded by
// timeout.
func BulkTransfer(p *Pair, dst string, size int64, timeout time.Duration) (TransferResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	seed := rand.Uint64()
	sink, err := helperCmd(ctx, p.Server, "sink", dst, 0, 0, timeout)
	if err != nil {
		return TransferResult{}, err
	}
	var sinkErr strings.Builder
	sink.Stderr = &sinkErr
	sinkOut, err := sink.StdoutPipe()
	if err != nil {
		return TransferResult{}, err
	}
	if err := sink.Start(); err != nil {
		return TransferResult{}, fmt.Errorf("start sink: %w", err)
	}
	defer func() { _ = sink.Process.Kill(); _ = sink.Wait() }()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(sinkOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "LISTENING") {
			time.Sleep(100 * time.Millisecond)
			return TransferResult{}, fmt.Errorf("sink did not start listening on %s: %q %s", dst, l, sinkErr.String())
		}
	case <-time.After(15 * time.Second):
		return TransferResult{}, errors.New("sink: no LISTENING line within 15s")
	}
	src, err := helperCmd(ctx, p.Client, "source", dst, size, seed, timeout)
	if err != nil {
		return TransferResult{}, err
	}
	srcOut, err := src.Output()
	if err != nil {
		var ee *exec.ExitError
		msg := ""
		if errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		return TransferResult{}, fmt.Errorf("source to %s failed: %v: %s (sink: %s)", dst, err, strings.TrimSpace(msg), sinkErr.String())
	}
	var sinkLine string
	select {
	case l := <-lines:
		sinkLine = l
	case <-time.After(15 * time.Second):
	}
	sm := resultRE.FindStringSubmatch(string(srcOut))
	km := resultRE.FindStringSubmatch(sinkLine)
	if sm == nil || km == nil {
		return TransferResult{}, fmt.Errorf("transfer to %s: missing result (source %q, sink %q %s)", dst, srcOut, sinkLine, sinkErr.String())
	}
	r := TransferResult{SHA256: sm[1]}
	r.Bytes, _ = strconv.ParseInt(sm[2], 10, 64)
	ns, _ := strconv.ParseInt(sm[3], 10, 64)
	r.Elapsed = time.Duration(ns)
	if r.Elapsed > 0 {
		r.Throughput = float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e6
	}
	if sm[1] != km[1] || sm[2] != km[2] || r.Bytes != size {
		return r, fmt.Errorf("transfer to %s corrupted: sent %s bytes sha256 %s, received %s bytes sha256 %s",
			dst, sm[2], sm[1], km[2], km[1])
	}
	return r, nil
}
