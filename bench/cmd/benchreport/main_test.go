package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRun lays out a two-round run folder as bench/run.sh writes it.
func writeRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"meta.tsv": "mode\tfull\nrounds\t2\nvariants\tveth weft-udp-aes ovpn-udp-aes wg-go-new wg-go-deb\nkernel\t6.x\n",
		"results.tsv": strings.Join([]string{
			// round 1
			"1\tveth\ttcp1_mbps\t10000", "1\tveth\ttcp4_mbps\t12000", "1\tveth\tudp_pps\t200000", "1\tveth\tping4_p50_ms\t0.010", "1\tveth\tstatus\tok",
			"1\tweft-udp-aes\ttcp1_mbps\t3000", "1\tweft-udp-aes\ttcp4_mbps\t2600", "1\tweft-udp-aes\tudp_pps\t90000", "1\tweft-udp-aes\tping4_p50_ms\t0.110",
			"1\tweft-udp-aes\ttcp1_vpn_cpu_s_per_gb\t2.0", "1\tweft-udp-aes\ttcp4_vpn_cpu_s_per_gb\t2.2", "1\tweft-udp-aes\tstatus\tok",
			"1\tovpn-udp-aes\ttcp1_mbps\t400", "1\tovpn-udp-aes\ttcp4_mbps\t380", "1\tovpn-udp-aes\tudp_pps\t30000", "1\tovpn-udp-aes\tping4_p50_ms\t0.150",
			"1\tovpn-udp-aes\ttcp1_vpn_cpu_s_per_gb\t12", "1\tovpn-udp-aes\ttcp4_vpn_cpu_s_per_gb\t12", "1\tovpn-udp-aes\tstatus\tok",
			"1\twg-go-new\ttcp1_mbps\t2000", "1\twg-go-new\ttcp4_mbps\t2000", "1\twg-go-new\tudp_pps\t100000", "1\twg-go-new\tping4_p50_ms\t0.090",
			"1\twg-go-new\ttcp1_vpn_cpu_s_per_gb\t4.0", "1\twg-go-new\ttcp4_vpn_cpu_s_per_gb\t4.0", "1\twg-go-new\tstatus\tok",
			"1\twg-go-deb\tstatus\tfailed",
			// round 2: veth twice as fast, everything else the same
			"2\tveth\ttcp1_mbps\t20000", "2\tveth\ttcp4_mbps\t24000", "2\tveth\tudp_pps\t200000", "2\tveth\tping4_p50_ms\t0.010", "2\tveth\tstatus\tok",
			"2\tweft-udp-aes\ttcp1_mbps\t3000", "2\tweft-udp-aes\ttcp4_mbps\t2600", "2\tweft-udp-aes\tudp_pps\t90000", "2\tweft-udp-aes\tping4_p50_ms\t0.110",
			"2\tweft-udp-aes\ttcp1_vpn_cpu_s_per_gb\t2.0", "2\tweft-udp-aes\ttcp4_vpn_cpu_s_per_gb\t3.6", "2\tweft-udp-aes\tstatus\tok",
			"2\tovpn-udp-aes\ttcp1_mbps\t400", "2\tovpn-udp-aes\ttcp4_mbps\t380", "2\tovpn-udp-aes\tudp_pps\t30000", "2\tovpn-udp-aes\tping4_p50_ms\t0.150",
			"2\tovpn-udp-aes\ttcp1_vpn_cpu_s_per_gb\t12", "2\tovpn-udp-aes\ttcp4_vpn_cpu_s_per_gb\t12", "2\tovpn-udp-aes\tstatus\tok",
			"2\twg-go-new\ttcp1_mbps\t2000", "2\twg-go-new\ttcp4_mbps\t2000", "2\twg-go-new\tudp_pps\t100000", "2\twg-go-new\tping4_p50_ms\t0.090",
			"2\twg-go-new\ttcp1_vpn_cpu_s_per_gb\t4.0", "2\twg-go-new\ttcp4_vpn_cpu_s_per_gb\t4.0", "2\twg-go-new\tstatus\tok",
			"2\twg-go-deb\tstatus\tfailed",
		}, "\n") + "\n",
		"notes.tsv": "1\twg-go-deb\tsetup_fail\twireguard-go binary not found\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReportTargetsAndRatios(t *testing.T) {
	dir := writeRun(t)
	if err := run(dir, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	by := map[string]*Variant{}
	for _, v := range rep.Variants {
		by[v.Name] = v
	}
	// per-round ratio to veth: 0.3 and 0.15 → median 0.225
	if got := by["weft-udp-aes"].ToVeth["tcp1_mbps"]; got < 0.2249 || got > 0.2251 {
		t.Errorf("tcp1 ×veth = %v, want 0.225", got)
	}
	if by["wg-go-deb"].Status != "failed" || len(by["wg-go-deb"].Failures) == 0 {
		t.Errorf("wg-go-deb: status %q failures %v, want failed with reason", by["wg-go-deb"].Status, by["wg-go-deb"].Failures)
	}
	want := map[string]string{
		"tcp1-vs-wg":   "met",     // 1.5
		"tcp1-vs-ovpn": "met",     // 7.5
		"tcp4-vs-wg":   "met",     // 1.3
		"cpu-vs-wg":    "met",     // TCP-1 0.5; TCP-4 median(0.55, 0.9) = 0.725; the larger, 0.725 ≤ 0.8
		"rtt-vs-wg":    "not met", // +0.100 vs +0.080
		"udp-vs-wg":    "not met", // 0.9
	}
	n := 0
	for _, tg := range rep.Targets {
		if tg.Weft != "weft-udp-aes" {
			continue
		}
		n++
		if tg.Status != want[tg.ID] {
			t.Errorf("target %s: %s (measured %v, %s), want %s", tg.ID, tg.Status, tg.Measured, tg.Detail, want[tg.ID])
		}
	}
	if n != 6 {
		t.Errorf("%d targets for weft-udp-aes, want 6", n)
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"**met**", "**not met**", "**FAILED**", "wireguard-go binary not found"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("summary.md lacks %q", s)
		}
	}
}

func TestReadmeRewrite(t *testing.T) {
	dir := writeRun(t)
	if err := run(dir, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(t.TempDir(), "README.md")
	orig := "# x\n\nbefore\n" + markStart + "\nold table\n" + markEnd + "\nafter\n"
	if err := os.WriteFile(readme, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, readme, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	s := string(b)
	if strings.Contains(s, "old table") || !strings.HasPrefix(s, "# x\n\nbefore\n"+markStart+"\n") || !strings.HasSuffix(s, markEnd+"\nafter\n") {
		t.Fatalf("rewritten README:\n%s", s)
	}
	if !strings.Contains(s, "| weft-udp-aes | 3,000") || !strings.Contains(s, "failed: ") {
		t.Errorf("README block lacks the weft row or the failed peer:\n%s", s)
	}
	// markers missing → error, file untouched
	if err := os.WriteFile(readme, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, readme, io.Discard); err == nil {
		t.Error("no error without markers")
	}
}

func TestMedianAndFormat(t *testing.T) {
	if m, _ := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	if _, ok := median(nil); ok {
		t.Error("median of nothing")
	}
	if s := fmtNum(1234567); s != "1,234,567" {
		t.Errorf("fmtNum = %q", s)
	}
}
