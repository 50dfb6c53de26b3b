package harness

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StatusAfter waits up to timeout for the status file at path to be rewritten
// (modification time) after `after` and to be complete (an END line), and
// returns its text. openvpn rewrites the file every `status FILE N` seconds,
// so a rewrite after `after` counts everything that happened before `after`.
func StatusAfter(path string, after time.Time, timeout time.Duration) (string, error) {
	var text string
	var lastErr error
	ok := WaitFor(timeout, 100*time.Millisecond, func() bool {
		st, err := os.Stat(path)
		if err != nil {
			lastErr = err
			return false
		}
		if !st.ModTime().After(after) {
			lastErr = fmt.Errorf("not rewritten since %s (mtime %s)", after.Format("15:04:05.000"), st.ModTime().Format("15:04:05.000"))
			return false
		}
		b, err := os.ReadFile(path)
		if err != nil {
			lastErr = err
			return false
		}
		s := string(b)
		if !strings.Contains(s, "\nEND") {
			lastErr = fmt.Errorf("incomplete (being rewritten)")
			return false
		}
		text = s
		return true
	})
	if !ok {
		return "", fmt.Errorf("status file %s: %v", path, lastErr)
	}
	return text, nil
}

// ParseP2PStatus parses the "OpenVPN STATISTICS" status file of an openvpn
// client (status-version 1 in client mode): "name,value" lines, e.g.
// "TCP/UDP read bytes" or "post-decompress bytes".
func ParseP2PStatus(text string) (map[string]int64, error) {
	if !strings.HasPrefix(text, "OpenVPN STATISTICS") {
		return nil, fmt.Errorf("not an openvpn client status file: %q", Tail(text, 3))
	}
	out := map[string]int64{}
	for _, l := range strings.Split(text, "\n") {
		i := strings.LastIndexByte(l, ',')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(l[i+1:]), 10, 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out, nil
}

var weftEnginesRE = regexp.MustCompile(`TLS engines: \[([^\]]*)\]`)

// WeftEngines returns the TLS engines compiled into the weft binary (parsed
// from `weft version`). It fails the test if the OpenSSL engine should be
// there (libssl-dev installed: /usr/include/openssl/ssl.h exists) but is not.
func WeftEngines(t testing.TB, bin string) []string {
	t.Helper()
	out, err := Run(10*time.Second, bin, "version")
	if err != nil {
		t.Fatalf("weft version: %v", err)
	}
	m := weftEnginesRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("weft version: no \"TLS engines: [...]\" line in %q", out)
	}
	engines := strings.Fields(m[1])
	has := func(n string) bool {
		for _, e := range engines {
			if e == n {
				return true
			}
		}
		return false
	}
	if !has("go") {
		t.Fatalf("weft version lists TLS engines %v: the go engine is missing", engines)
	}
	if _, err := os.Stat("/usr/include/openssl/ssl.h"); err == nil && !has("openssl") {
		t.Fatalf("libssl-dev is installed (/usr/include/openssl/ssl.h) but %s was built without the OpenSSL TLS engine "+
			"(weft version: %v); build it with `make build` (go build -tags openssl)", bin, engines)
	}
	return engines
}
