package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartWeftConfClientArgs is StartConfClient for a weft client started with
// extra command-line arguments after `--config FILE` (e.g. --tls-engine).
// The returned client must not be relaunched (Launch would drop the args).
func StartWeftConfClientArgs(t testing.TB, bin, ns, name, conf string, args ...string) *ConfClient {
	t.Helper()
	dir := t.TempDir()
	c := &ConfClient{t: t, Kind: WeftClient, Bin: bin, Name: name, NS: ns, Dir: dir, Conf: filepath.Join(dir, name+".conf")}
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s weft client config (args %q) ----\n%s", name, args, conf)
			t.Logf("---- %s weft client log (tail) [%s] ----\n%s", name, c.State(), Tail(c.LogText(), 60))
		}
	})
	log := filepath.Join(dir, name+"-0.log")
	c.logs = append(c.logs, log)
	argv := NSExec(ns, append([]string{bin, "client", "--config", c.Conf}, args...)...)
	c.Start = time.Now()
	p, err := StartProc(t, name, log, nil, argv...)
	if err != nil {
		t.Fatal(err)
	}
	c.Proc = p
	t.Logf("weft client started (pid %d): %s", p.PID(), strings.Join(argv, " "))
	return c
}
