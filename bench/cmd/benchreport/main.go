// Command benchreport turns one bench/run.sh run folder into summary.md and results.json,
// and renders the README performance table from a results.json.
//
//	benchreport -dir bench/results/<run>                    # writes summary.md + results.json
//	benchreport -dir bench/results/<run> -readme README.md  # rewrites the bench:start/end block
//	benchreport -dir bench/results/<run> -readme -          # prints that block
//
// Inputs written by bench/run.sh: meta.tsv (key, value), results.tsv (round, variant, metric,
// value), notes.tsv (round, variant, key, text), udp-sweep.tsv. Medians are over rounds; a
// ratio is the median over rounds of the per-round ratio (both figures from the same round).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	dir := flag.String("dir", "bench/results/latest", "run folder")
	readme := flag.String("readme", "", "README file whose bench:start/end block to rewrite from DIR/results.json ('-' prints the block)")
	flag.Parse()
	if err := run(*dir, *readme, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(dir, readme string, stdout io.Writer) error {
	if readme != "" {
		b, err := os.ReadFile(filepath.Join(dir, "results.json"))
		if err != nil {
			return err
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s/results.json: %w", dir, err)
		}
		block := readmeBlock(&rep)
		if readme == "-" {
			_, err := io.WriteString(stdout, block)
			return err
		}
		return rewriteReadme(readme, block)
	}
	rep, err := load(dir)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := summary(rep, dir)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(md), 0o644); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, md)
	return err
}

// Report is results.json.
type Report struct {
	Run      map[string]string `json:"run"`
	Rounds   []int             `json:"rounds"`
	Variants []*Variant        `json:"variants"`
	// Versus holds, per weft variant, the ratios to every other variant that ran.
	Versus   []*Versus `json:"weft_vs_peers"`
	Targets  []*Target `json:"targets"`
	Headline string    `json:"headline_weft_variant"`
	Profiles []string  `json:"profiles"`
	Notes    []Note    `json:"notes"`
}

// Variant is one program/mode with its medians and ratios to the veth limit.
type Variant struct {
	Name     string                     `json:"name"`
	Program  string                     `json:"program"`
	Status   string                     `json:"status"` // ok, partial, failed
	RoundsOK int                        `json:"rounds_ok"`
	Rounds   int                        `json:"rounds_run"`
	Failures []string                   `json:"failures,omitempty"`
	Median   map[string]float64         `json:"median"`
	ToVeth   map[string]float64         `json:"ratio_to_veth"`
	PerRound map[string]map[int]float64 `json:"per_round"`
}

// Versus is one weft variant against one other variant: median per-round ratios (weft ÷ peer).
type Versus struct {
	Weft   string             `json:"weft"`
	Peer   string             `json:"peer"`
	Ratios map[string]float64 `json:"ratios"`
}

// Target is one issue target evaluated for one weft variant.
type Target struct {
	Weft      string   `json:"weft"`
	ID        string   `json:"id"`
	Text      string   `json:"text"`
	Peer      string   `json:"peer"`
	Measured  *float64 `json:"measured_ratio"`
	Threshold float64  `json:"threshold"`
	Op        string   `json:"op"` // ">=" or "<="
	Status    string   `json:"status"`
	Detail    string   `json:"detail"`
}

// Note is a line of notes.tsv.
type Note struct {
	Round   int    `json:"round"`
	Variant string `json:"variant"`
	Key     string `json:"key"`
	Text    string `json:"text"`
}

func readTSV(path string, minCols int) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) >= minCols {
			rows = append(rows, cols)
		}
	}
	return rows, sc.Err()
}

func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// metrics with a ratio to veth (and to peers); "lower" marks lower-is-better.
var ratioMetrics = []string{"tcp1_mbps", "tcp4_mbps", "udp_pps", "ping4_p50_ms", "ping4_avg_ms", "tcp1_sys_cpu_s_per_gb"}
var vsMetrics = []string{"tcp1_mbps", "tcp4_mbps", "udp_pps", "tcp1_vpn_cpu_s_per_gb", "tcp4_vpn_cpu_s_per_gb", "ping4_added_ms"}

func load(dir string) (*Report, error) {
	rep := &Report{Run: map[string]string{"id": filepath.Base(mustAbs(dir))}}
	meta, err := readTSV(filepath.Join(dir, "meta.tsv"), 2)
	if err != nil {
		return nil, err
	}
	for _, m := range meta {
		rep.Run[m[0]] = m[1]
	}
	rows, err := readTSV(filepath.Join(dir, "results.tsv"), 4)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s/results.tsv: no rows", dir)
	}
	notes, err := readTSV(filepath.Join(dir, "notes.tsv"), 4)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Variant{}
	var order []string
	get := func(name string) *Variant {
		v := byName[name]
		if v == nil {
			v = &Variant{Name: name, Median: map[string]float64{}, ToVeth: map[string]float64{}, PerRound: map[string]map[int]float64{}}
			byName[name] = v
			order = append(order, name)
		}
		return v
	}
	for _, name := range strings.Fields(rep.Run["variants"]) {
		get(name)
	}
	roundSet := map[int]bool{}
	status := map[string]map[int]string{}
	for _, r := range rows {
		round, err := strconv.Atoi(r[0])
		if err != nil || r[1] == "" {
			continue
		}
		v := get(r[1])
		if r[2] == "status" {
			if status[v.Name] == nil {
				status[v.Name] = map[int]string{}
			}
			status[v.Name][round] = r[3]
			roundSet[round] = true
			continue
		}
		x, err := strconv.ParseFloat(r[3], 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		if v.PerRound[r[2]] == nil {
			v.PerRound[r[2]] = map[int]float64{}
		}
		v.PerRound[r[2]][round] = x
	}
	for r := range roundSet {
		rep.Rounds = append(rep.Rounds, r)
	}
	sort.Ints(rep.Rounds)
	for _, n := range notes {
		round, _ := strconv.Atoi(n[0])
		rep.Notes = append(rep.Notes, Note{Round: round, Variant: n[1], Key: n[2], Text: n[3]})
	}
	// derived: added ping RTT (median of the per-packet RTTs) over the veth limit of the same round
	if veth := byName["veth"]; veth != nil {
		for _, v := range byName {
			for round, x := range v.PerRound["ping4_p50_ms"] {
				if b, ok := veth.PerRound["ping4_p50_ms"][round]; ok {
					if v.PerRound["ping4_added_ms"] == nil {
						v.PerRound["ping4_added_ms"] = map[int]float64{}
					}
					v.PerRound["ping4_added_ms"][round] = x - b
				}
			}
		}
	}
	for _, name := range order {
		v := byName[name]
		v.Program = program(name, rep.Run)
		for m, pr := range v.PerRound {
			xs := make([]float64, 0, len(pr))
			for _, x := range pr {
				xs = append(xs, x)
			}
			v.Median[m], _ = median(xs)
		}
		st := status[name]
		v.Rounds = len(st)
		for _, s := range st {
			if s == "ok" {
				v.RoundsOK++
			}
		}
		switch {
		case v.Rounds == 0:
			v.Status = "not run"
		case v.RoundsOK == v.Rounds:
			v.Status = "ok"
		case v.RoundsOK == 0 && len(v.PerRound["tcp1_mbps"]) == 0:
			v.Status = "failed"
		default:
			v.Status = "partial"
		}
		seen := map[string]bool{}
		for _, n := range rep.Notes {
			if n.Variant == name && (n.Key == "setup_fail" || strings.HasSuffix(n.Key, "_fail") || n.Key == "vpn_died" || n.Key == "not_run" || n.Key == "udp_no_pass") {
				t := n.Key + ": " + n.Text
				if !seen[t] {
					seen[t] = true
					v.Failures = append(v.Failures, fmt.Sprintf("r%d %s", n.Round, t))
				}
			}
		}
		if veth := byName["veth"]; veth != nil {
			for _, m := range ratioMetrics {
				if r, ok := pairedRatio(v, veth, m); ok {
					v.ToVeth[m] = r
				}
			}
		}
		rep.Variants = append(rep.Variants, v)
	}
	// weft vs every other variant
	for _, w := range rep.Variants {
		if !strings.HasPrefix(w.Name, "weft-") {
			continue
		}
		for _, p := range rep.Variants {
			if p == w || p.Name == "veth" {
				continue
			}
			vs := &Versus{Weft: w.Name, Peer: p.Name, Ratios: map[string]float64{}}
			for _, m := range vsMetrics {
				if r, ok := pairedRatio(w, p, m); ok {
					vs.Ratios[m] = r
				}
			}
			rep.Versus = append(rep.Versus, vs)
		}
	}
	rep.Headline = "weft-udp-aes"
	for _, w := range rep.Variants {
		if strings.HasPrefix(w.Name, "weft-") {
			rep.Targets = append(rep.Targets, targets(w, byName)...)
		}
	}
	if len(rep.Targets) == 0 { // no weft variant in the run: say so, per target
		rep.Targets = targets(&Variant{Name: "weft-udp-aes", Status: "not run"}, byName)
	}
	profs, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	for _, p := range profs {
		rep.Profiles = append(rep.Profiles, filepath.Base(p))
	}
	return rep, nil
}

func mustAbs(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// pairedRatio is the median over rounds of a[m]/b[m], using rounds where both exist.
func pairedRatio(a, b *Variant, m string) (float64, bool) {
	var rs []float64
	for round, x := range a.PerRound[m] {
		if y, ok := b.PerRound[m][round]; ok && y != 0 {
			rs = append(rs, x/y)
		}
	}
	return median(rs)
}

func program(name string, run map[string]string) string {
	cipher := ""
	switch {
	case strings.HasSuffix(name, "-aes"):
		cipher = "AES-256-GCM"
	case strings.HasSuffix(name, "-chacha"):
		cipher = "CHACHA20-POLY1305"
	}
	proto := "UDP"
	if strings.Contains(name, "-tcp-") {
		proto = "TCP"
	}
	switch {
	case name == "veth":
		return "plain veth, kernel " + run["kernel"]
	case strings.HasPrefix(name, "weft-"):
		return fmt.Sprintf("weft server ↔ weft client, %s, %s", proto, cipher)
	case strings.HasPrefix(name, "ovpn-"):
		return fmt.Sprintf("%s server ↔ client, %s, %s", run["openvpn"], proto, cipher)
	case strings.HasPrefix(name, "weftc-"):
		return fmt.Sprintf("openvpn server ↔ weft client, %s, %s", proto, cipher)
	case name == "wg-go-new":
		return "wireguard-go " + run["wg_go_new"]
	case name == "wg-go-deb":
		return "wireguard-go " + run["wg_go_deb"]
	case name == "nebula-deb":
		return "nebula " + run["nebula_deb"] + ", AES-256-GCM"
	case name == "nebula-new":
		return "nebula " + run["nebula_new"] + ", AES-256-GCM"
	}
	return name
}

func targets(w *Variant, by map[string]*Variant) []*Target {
	mode := strings.TrimPrefix(w.Name, "weft-")
	ovpn := "ovpn-" + mode
	wg := "wg-go-new"
	type spec struct {
		id, text, peer, metric string
		thr                    float64
		op                     string
	}
	specs := []spec{
		{"tcp1-vs-wg", "single-stream TCP ≥ 1.25× newest wireguard-go", wg, "tcp1_mbps", 1.25, ">="},
		{"tcp1-vs-ovpn", "single-stream TCP ≥ 6× openvpn 2.6 (same transport and cipher)", ovpn, "tcp1_mbps", 6, ">="},
		{"tcp4-vs-wg", "4-stream TCP ≥ 1.25× newest wireguard-go", wg, "tcp4_mbps", 1.25, ">="},
		{"cpu-vs-wg", "CPU s per GB ≤ 0.8× newest wireguard-go (TCP-1 and TCP-4 runs)", wg, "cpu", 0.8, "<="},
		{"rtt-vs-wg", "added ping RTT (median, over veth) ≤ newest wireguard-go's", wg, "ping4_added_ms", 1, "<="},
		{"udp-vs-wg", "UDP packets/s at < 1% loss ≥ newest wireguard-go's", wg, "udp_pps", 1, ">="},
	}
	var out []*Target
	for _, s := range specs {
		t := &Target{Weft: w.Name, ID: s.id, Text: s.text, Peer: s.peer, Threshold: s.thr, Op: s.op, Status: "not measured"}
		out = append(out, t)
		p := by[s.peer]
		need := s.metric
		if need == "cpu" {
			need = "tcp1_vpn_cpu_s_per_gb"
		}
		if len(w.PerRound[need]) == 0 {
			t.Detail = w.Name + ": no figure (" + w.Status + firstFailure(w) + ")"
			continue
		}
		if p == nil {
			t.Detail = s.peer + " was not in this run"
			continue
		}
		if len(p.PerRound[need]) == 0 {
			t.Detail = s.peer + ": no figure (" + p.Status + firstFailure(p) + ")"
			continue
		}
		var r float64
		var ok bool
		switch s.metric {
		case "cpu":
			r1, ok1 := pairedRatio(w, p, "tcp1_vpn_cpu_s_per_gb")
			r4, ok4 := pairedRatio(w, p, "tcp4_vpn_cpu_s_per_gb")
			if ok1 && ok4 {
				r, ok = math.Max(r1, r4), true
				t.Detail = fmt.Sprintf("TCP-1 %.2f s/GB vs %.2f (×%.2f), TCP-4 %.2f vs %.2f (×%.2f); the larger ratio counts",
					w.Median["tcp1_vpn_cpu_s_per_gb"], p.Median["tcp1_vpn_cpu_s_per_gb"], r1,
					w.Median["tcp4_vpn_cpu_s_per_gb"], p.Median["tcp4_vpn_cpu_s_per_gb"], r4)
			}
		case "ping4_added_ms":
			a, okA := w.Median["ping4_added_ms"]
			b, okB := p.Median["ping4_added_ms"]
			if okA && okB {
				ok = true
				if b > 0 {
					r = a / b
				} else if a <= b {
					r = 0
				} else {
					r = math.Inf(1)
				}
				t.Detail = fmt.Sprintf("+%.3f ms vs +%.3f ms (ping median %.3f vs %.3f ms, avg %.3f vs %.3f ms)", a, b,
					w.Median["ping4_p50_ms"], p.Median["ping4_p50_ms"], w.Median["ping4_avg_ms"], p.Median["ping4_avg_ms"])
				if math.IsInf(r, 0) {
					r = 999
				}
			}
		default:
			r, ok = pairedRatio(w, p, s.metric)
			if ok {
				t.Detail = fmt.Sprintf("%s vs %s", fmtNum(w.Median[s.metric]), fmtNum(p.Median[s.metric]))
			}
		}
		if !ok {
			t.Detail = "no paired figures"
			continue
		}
		t.Measured = &r
		met := r >= s.thr
		if s.op == "<=" {
			met = r <= s.thr
		}
		if met {
			t.Status = "met"
		} else {
			t.Status = "not met"
		}
	}
	return out
}

func firstFailure(v *Variant) string {
	if len(v.Failures) == 0 {
		return ""
	}
	return ": " + v.Failures[0]
}

func fmtNum(x float64) string {
	switch {
	case x == math.Trunc(x) && math.Abs(x) < 1000:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case math.Abs(x) >= 1000:
		return commas(int64(math.Round(x)))
	case math.Abs(x) >= 10:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case math.Abs(x) >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 3, 64)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func cell(v *Variant, m string) string {
	x, ok := v.Median[m]
	if !ok {
		return "–"
	}
	return fmtNum(x)
}

func cellVeth(v *Variant, m string) string {
	c := cell(v, m)
	if c == "–" || v.Name == "veth" {
		return c
	}
	if r, ok := v.ToVeth[m]; ok {
		c += fmt.Sprintf(" (×%s)", ratioStr(r))
	}
	return c
}

func ratioStr(r float64) string {
	switch {
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r >= 0.1:
		return strconv.FormatFloat(r, 'f', 2, 64)
	default:
		return strconv.FormatFloat(r, 'f', 3, 64)
	}
}

func statusCell(v *Variant) string {
	s := fmt.Sprintf("%s %d/%d", v.Status, v.RoundsOK, v.Rounds)
	if v.Status == "failed" || v.Status == "not run" {
		s = "**" + strings.ToUpper(v.Status) + "**"
	}
	return s
}

func summary(rep *Report, dir string) string {
	var b bytes.Buffer
	r := rep.Run
	fmt.Fprintf(&b, "# weft bench %s (%s mode)\n\n", r["id"], r["mode"])
	fmt.Fprintf(&b, "- %s → %s (%ss), %s × %s CPUs (%s), kernel %s\n", r["started_utc"], r["finished_utc"], r["runtime_s"], r["cpu"], r["ncpu"], strings.TrimSpace(r["cpu_flags"]), r["kernel"])
	fmt.Fprintf(&b, "- %s round(s), interleaved; TCP runs %s s; UDP rate sweep %s s per step (≤ %s steps after an unlimited probe), datagrams %s B, pass = loss < %s%%; %s pings at %s s\n",
		r["rounds"], r["dur_s"], r["udp_step_s"], r["udp_max_steps"], r["udp_len"], r["udp_loss_max_pct"], r["pings"], r["ping_interval"])
	fmt.Fprintf(&b, "- tunnel MTU %s for every VPN, veth MTU %s; %s\n", r["tun_mtu"], r["veth_mtu"], r["direction"])
	fmt.Fprintf(&b, "- weft: %s, git %s; server command: %s\n", r["weft"], r["weft_git"], r["weft_server"])
	fmt.Fprintf(&b, "- peers: %s; wireguard-go new %s; Debian %s; nebula %s / %s; %s; %s\n\n",
		r["openvpn"], r["wg_go_new"], r["wg_go_deb"], r["nebula_deb"], r["nebula_new"], r["iperf3"], r["go"])

	if w := loadWarning(rep); w != "" {
		b.WriteString("> **Warning:** " + w + "\n\n")
	}
	b.WriteString("## Targets (issue: multi-core data plane)\n\n")
	writeTargets(&b, rep, true)
	b.WriteString("\n## All variants (medians; ×veth = median of per-round ratios to plain veth)\n\n")
	b.WriteString("| variant | program | status | TCP 1-stream Mbit/s (×veth) | TCP 4-stream Mbit/s (×veth) | UDP pps at <1% loss (×veth) | ping ms median (added) / avg | ping6 ms median | VPN CPU s/GB TCP-1 / TCP-4 / UDP | box CPU s/GB TCP-1 |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range rep.Variants {
		ping := cell(v, "ping4_p50_ms")
		if a, ok := v.Median["ping4_added_ms"]; ok && v.Name != "veth" {
			ping += fmt.Sprintf(" (+%.3f)", a)
		}
		ping += " / " + cell(v, "ping4_avg_ms")
		cpu := "–"
		if v.Name != "veth" {
			cpu = cell(v, "tcp1_vpn_cpu_s_per_gb") + " / " + cell(v, "tcp4_vpn_cpu_s_per_gb") + " / " + cell(v, "udp_vpn_cpu_s_per_gb")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v.Name, v.Program, statusCell(v),
			cellVeth(v, "tcp1_mbps"), cellVeth(v, "tcp4_mbps"), cellVeth(v, "udp_pps"), ping, cell(v, "ping6_p50_ms"), cpu, cell(v, "tcp1_sys_cpu_s_per_gb"))
	}
	var failed []string
	for _, v := range rep.Variants {
		for _, f := range v.Failures {
			failed = append(failed, fmt.Sprintf("- **%s** %s", v.Name, f))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\n### Failures (recorded, not dropped)\n\n")
		b.WriteString(strings.Join(failed, "\n") + "\n")
	}

	if len(rep.Versus) > 0 {
		b.WriteString("\n## weft ÷ each peer (median of per-round ratios; CPU and RTT: lower is better)\n\n")
		b.WriteString("| weft variant | peer | TCP-1 | TCP-4 | UDP pps | CPU/GB TCP-1 | CPU/GB TCP-4 | added RTT |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, vs := range rep.Versus {
			fmt.Fprintf(&b, "| %s | %s |", vs.Weft, vs.Peer)
			for _, m := range vsMetrics {
				if x, ok := vs.Ratios[m]; ok {
					fmt.Fprintf(&b, " %s |", ratioStr(x))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}
	if len(rep.Targets) > 6 {
		b.WriteString("\n## Targets for every weft variant\n\n")
		writeTargets(&b, rep, false)
	}

	b.WriteString("\n## Per-round figures (spread)\n\n")
	b.WriteString("| variant | metric |")
	for _, rd := range rep.Rounds {
		fmt.Fprintf(&b, " r%d |", rd)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(rep.Rounds)) + "\n")
	for _, v := range rep.Variants {
		for _, m := range []string{"tcp1_mbps", "tcp4_mbps", "udp_pps", "tcp1_vpn_cpu_s_per_gb"} {
			if len(v.PerRound[m]) == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s |", v.Name, m)
			for _, rd := range rep.Rounds {
				if x, ok := v.PerRound[m][rd]; ok {
					fmt.Fprintf(&b, " %s |", fmtNum(x))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}

	b.WriteString("\n## Sanity (medians): IP fragments (v4+v6, both namespaces), TCP retransmits, steal, UDP sweep, load\n\n")
	b.WriteString("\"other load %\" is the box's busy CPU in the 1 s before the variant started, while nothing of this run was running (other tenants).\n\n")
	b.WriteString("| variant | frags TCP-1 / TCP-4 / UDP | retrans TCP-1 / TCP-4 | steal s TCP-1 | UDP overload: offered → received pps | UDP pass: offered pps, loss %, next failing offered | setup s | loadavg | other load % |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range rep.Variants {
		pass := "–"
		if _, ok := v.Median["udp_offered_pps"]; ok {
			pass = fmt.Sprintf("%s, %s, %s", cell(v, "udp_offered_pps"), cell(v, "udp_loss_pct"), cell(v, "udp_bracket_hi_pps"))
			if v.Median["udp_sender_limited"] > 0 {
				pass += " (sender-limited)"
			}
		}
		fmt.Fprintf(&b, "| %s | %s / %s / %s | %s / %s | %s | %s → %s | %s | %s | %s | %s |\n", v.Name,
			cell(v, "tcp1_frags"), cell(v, "tcp4_frags"), cell(v, "udp_frags"), cell(v, "tcp1_retrans"), cell(v, "tcp4_retrans"),
			cell(v, "tcp1_steal_s"), cell(v, "udp_overload_tx_pps"), cell(v, "udp_overload_rx_pps"), pass, cell(v, "setup_s"), cell(v, "loadavg1"), cell(v, "bg_busy_pct"))
	}
	if sweep, _ := readTSV(filepath.Join(dir, "udp-sweep.tsv"), 8); len(sweep) > 1 {
		b.WriteString("\nUDP sweep steps (target pps → received pps / loss %; target 0 = unlimited probe):\n\n")
		lines := map[string][]string{}
		var keys []string
		for _, s := range sweep[1:] {
			k := "r" + s[0] + " " + s[1]
			if _, ok := lines[k]; !ok {
				keys = append(keys, k)
			}
			lines[k] = append(lines[k], fmt.Sprintf("%s→%s/%s", s[3], s[5], strings.TrimRight(strings.TrimRight(s[6], "0"), ".")))
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s: %s\n", k, strings.Join(lines[k], ", "))
		}
	}

	if len(rep.Profiles) > 0 {
		b.WriteString("\n## weft CPU profiles (round 1; `go tool pprof -top` text beside each)\n\n")
		for _, p := range rep.Profiles {
			fmt.Fprintf(&b, "- `%s` (top: `%s`)\n", p, strings.TrimSuffix(p, ".pprof")+".top.txt")
			if top, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(p, ".pprof")+".top.txt")); err == nil {
				b.WriteString("\n```\n" + headLines(string(top), 18) + "```\n\n")
			}
		}
	}
	b.WriteString("\n## Notes\n\n")
	seen := map[string]bool{}
	for _, n := range rep.Notes {
		k := n.Variant + n.Key + n.Text
		if seen[k] || n.Key == "wg_handshake_epoch" {
			continue
		}
		seen[k] = true
		fmt.Fprintf(&b, "- r%d %s %s: %s\n", n.Round, n.Variant, n.Key, n.Text)
	}
	return b.String()
}

// loadWarning reports other tenants' CPU load measured before the variants (bg_busy_pct).
func loadWarning(rep *Report) string {
	var xs []float64
	for _, v := range rep.Variants {
		for _, x := range v.PerRound["bg_busy_pct"] {
			xs = append(xs, x)
		}
	}
	m, ok := median(xs)
	if !ok {
		return ""
	}
	sort.Float64s(xs)
	mx := xs[len(xs)-1]
	if mx <= 25 {
		return ""
	}
	return fmt.Sprintf("other processes kept %.0f%% (median) to %.0f%% (max) of the CPUs busy just before the variants ran; figures taken on a busy box are noisy (QUIET_WAIT=<s> makes the bench wait for a quiet box).", m, mx)
}

func headLines(s string, n int) string {
	ls := strings.SplitAfter(s, "\n")
	if len(ls) > n {
		ls = ls[:n]
	}
	out := strings.Join(ls, "")
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out
}

func measuredStr(t *Target) string {
	if t.Measured == nil {
		return "–"
	}
	return "×" + ratioStr(*t.Measured)
}

func writeTargets(b *bytes.Buffer, rep *Report, headlineOnly bool) {
	b.WriteString("| weft variant | target | peer | measured (weft ÷ peer) | threshold | result | figures |\n|---|---|---|---:|---:|---|---|\n")
	for _, t := range rep.Targets {
		if headlineOnly && t.Weft != rep.Headline {
			continue
		}
		res := t.Status
		switch t.Status {
		case "met":
			res = "**met**"
		case "not met":
			res = "**not met**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s %s | %s | %s |\n", t.Weft, t.Text, t.Peer, measuredStr(t), t.Op, ratioStr(t.Threshold), res, t.Detail)
	}
}

const (
	markStart = "<!-- bench:start -->"
	markEnd   = "<!-- bench:end -->"
)

// readmeBlock is the README performance section, generated from results.json.
func readmeBlock(rep *Report) string {
	var b bytes.Buffer
	r := rep.Run
	fmt.Fprintf(&b, "Measured by `make bench` (%s mode, run `%s`, %s round(s), medians) on one box: %s × %s CPUs, kernel %s; "+
		"two network namespaces joined by a veth (MTU 1500), tunnel MTU %s, every tunnel end, iperf3 sender and receiver on the same %s CPUs. "+
		"Ratios are to the plain veth of the same round. weft: %s.\n\n",
		r["mode"], r["id"], r["rounds"], r["cpu"], r["ncpu"], r["kernel"], r["tun_mtu"], r["ncpu"], r["weft_git"])
	if w := loadWarning(rep); w != "" {
		b.WriteString("Note: " + w + "\n\n")
	}
	b.WriteString("| variant | TCP 1 stream Mbit/s | TCP 4 streams Mbit/s | UDP pps at <1% loss | ping RTT ms (median) | VPN CPU s/GB (TCP-1) |\n|---|---:|---:|---:|---:|---:|\n")
	for _, v := range rep.Variants {
		if v.Status == "failed" || v.Status == "not run" {
			reason := "no figures"
			if len(v.Failures) > 0 {
				reason = v.Failures[0]
				if i := strings.Index(reason, "setup_fail: "); i >= 0 {
					reason = reason[i+len("setup_fail: "):]
				}
				if len(reason) > 90 {
					reason = reason[:90] + "…"
				}
			}
			fmt.Fprintf(&b, "| %s | failed: %s | | | | |\n", v.Name, strings.ReplaceAll(reason, "|", "/"))
			continue
		}
		cpu := "–"
		if v.Name != "veth" {
			cpu = cell(v, "tcp1_vpn_cpu_s_per_gb")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", v.Name, cellVeth(v, "tcp1_mbps"), cellVeth(v, "tcp4_mbps"), cellVeth(v, "udp_pps"), cell(v, "ping4_p50_ms"), cpu)
	}
	fmt.Fprintf(&b, "\nTargets (%s, same box, same run):\n\n", rep.Headline)
	for _, t := range rep.Targets {
		if t.Weft != rep.Headline {
			continue
		}
		if t.Measured == nil {
			fmt.Fprintf(&b, "- %s: **%s** (%s)\n", t.Text, t.Status, t.Detail)
			continue
		}
		fmt.Fprintf(&b, "- %s: **%s** (×%s of %s; threshold %s %s; %s)\n", t.Text, t.Status, ratioStr(*t.Measured), t.Peer, t.Op, ratioStr(t.Threshold), t.Detail)
	}
	b.WriteString("\nvariants: `weft-*` weft server ↔ weft client; `ovpn-*` openvpn 2.6 with the same config files; `wg-go-new` wireguard-go from the Go module proxy, `wg-go-deb` Debian's; `nebula-*` Debian's 1.6.1 / v1.10.3. Full report: `bench/results/<run>/summary.md`.\n")
	return b.String()
}

func rewriteReadme(path, block string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, markStart)
	j := strings.Index(s, markEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %s … %s not found", path, markStart, markEnd)
	}
	out := s[:i+len(markStart)] + "\n" + block + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}
