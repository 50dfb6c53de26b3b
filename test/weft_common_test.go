package test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"weft/test/harness"
)

// clientUnderTest returns the client the weft tests drive: the weft binary
// ($WEFT_BIN or <repo>/bin/weft; skips loudly if missing). For validating the
// harness itself, WEFT_TEST_CLIENT=openvpn runs the same tests with the openvpn
// client instead (weft-only cases and checks are skipped then).
func clientUnderTest(t *testing.T) (harness.ClientKind, string) {
	t.Helper()
	harness.RequireOpenVPN(t) // the server side is always openvpn
	if os.Getenv("WEFT_TEST_CLIENT") == "openvpn" {
		return harness.OpenVPNClient, ""
	}
	return harness.WeftClient, harness.WeftBin(t)
}

// isWeft reports whether the client under test is weft.
func isWeft(k harness.ClientKind) bool { return k == harness.WeftClient }

// pushReply returns the PUSH_REPLY the server sent (last one).
func pushReply(srv *harness.Server) string {
	var last string
	for _, l := range strings.Split(srv.LogText(), "\n") {
		if strings.Contains(l, "SENT CONTROL") && strings.Contains(l, "PUSH_REPLY") {
			last = l
		}
	}
	return last
}

// requireLine fails unless some line of text contains all subs.
func requireLine(t *testing.T, who, text string, subs ...string) string {
	t.Helper()
	l, ok := harness.FindLine(text, subs...)
	if !ok {
		t.Errorf("%s log has no line containing all of %q", who, subs)
		return ""
	}
	t.Logf("%s log: %s", who, strings.TrimSpace(l))
	return l
}

// assertNotConnected checks a client that must not get a tunnel: no
// "Initialization Sequence Completed", no pushed address, and either still
// running (retrying) or exited with a non-zero code.
func assertNotConnected(t *testing.T, cli *harness.Client) {
	t.Helper()
	if strings.Contains(cli.LogText(), harness.InitCompleted) || cli.HasTunAddr() {
		t.Errorf("%s client connected although it must not", cli.Kind)
	}
	if cli.Proc.Exited() && cli.Proc.ExitCode() == 0 && isWeft(cli.Kind) {
		t.Errorf("weft exited with code 0 on a failure (%s); want non-zero, or keep retrying", cli.State())
	}
	t.Logf("%s client state: %s", cli.Kind, cli.State())
}

// fmtDur formats a duration for summaries.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return d.Round(time.Millisecond).String()
	}
}
