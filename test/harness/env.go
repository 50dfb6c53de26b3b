package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SkipLoud skips the test with a message that is also written to stderr, so it is
// visible without -v.
func SkipLoud(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "\n*** SKIPPING %s: %s ***\n\n", t.Name(), msg)
	t.Skip("SKIPPED (LOUD): " + msg)
}

// RequireLab skips the test loudly unless it can build namespace labs: root,
// /dev/net/tun and the ip and ping commands.
func RequireLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipLoud(t, "needs root (network namespaces, TUN); run `make test` as root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		SkipLoud(t, "needs /dev/net/tun: %v", err)
	}
	for _, c := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(c); err != nil {
			SkipLoud(t, "needs %q in PATH (run scripts/setup.sh): %v", c, err)
		}
	}
}

// RequireOpenVPN is RequireLab plus the openvpn binary.
func RequireOpenVPN(t testing.TB) {
	t.Helper()
	RequireLab(t)
	if _, err := exec.LookPath("openvpn"); err != nil {
		SkipLoud(t, "needs the openvpn binary (run scripts/setup.sh): %v", err)
	}
}

// RepoRoot returns the directory holding go.mod, searching upwards from the
// working directory ("" if none).
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// WeftBin returns the weft binary to test: $WEFT_BIN, else <repo>/bin/weft. If it
// does not exist the test is skipped loudly (that is the only reason to skip a
// weft test besides missing root/TUN/openvpn).
func WeftBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	src := "$WEFT_BIN"
	if bin == "" {
		src = "default <repo>/bin/weft"
		if root := RepoRoot(); root != "" {
			bin = filepath.Join(root, "bin", "weft")
		}
	}
	if bin == "" {
		SkipLoud(t, "WEFT BINARY NOT FOUND: WEFT_BIN is unset and no repo root; run `make build` or `make test`")
	}
	abs, err := filepath.Abs(bin)
	if err == nil {
		bin = abs
	}
	st, err := os.Stat(bin)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		SkipLoud(t, "WEFT BINARY MISSING (%s = %s): weft interop tests did NOT run; build it with `make build`", src, bin)
	}
	return bin
}
