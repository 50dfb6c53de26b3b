package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// variantSummary aggregates one server/transport over rounds (medians).
type variantSummary struct {
	Name             string          `json:"name"`
	Rounds           int             `json:"rounds"`
	N                int             `json:"n"`
	Conc             int             `json:"concurrency_limit"`
	MaxInflight      int64           `json:"max_in_flight"`
	ConnectedMin     int             `json:"connected_min"`
	ConnectedIdleMin int64           `json:"connected_at_idle_end_min"`
	ConnectSeconds   float64         `json:"connect_all_s"`
	Rate             float64         `json:"handshakes_per_s"`
	PeakRate         float64         `json:"peak_handshakes_per_s"`
	PeakConc         int             `json:"peak_concurrency"`
	LatP50, LatP99   float64         `json:"-"`
	LatP50ms         float64         `json:"latency_p50_ms"`
	LatP99ms         float64         `json:"latency_p99_ms"`
	CtlOut, CtlIn    float64         `json:"-"`
	CtlOutMean       float64         `json:"client_control_packets_sent_per_handshake"`
	CtlInMean        float64         `json:"client_control_packets_received_per_handshake"`
	CtlOutMin        int             `json:"client_control_packets_sent_min"`
	Failed           int             `json:"failed_total"`
	TimedOut         int             `json:"timed_out_total"`
	Retries          int             `json:"retries_total"`
	CPUPerHSms       float64         `json:"server_cpu_per_handshake_ms"`
	Capacity         float64         `json:"server_cpu_bound_handshakes_per_s"`
	CapacityCores    int             `json:"capacity_cores"`
	LoadgenCPU       float64         `json:"loadgen_cpu_connect_s"`
	ServerCPUConnect float64         `json:"server_cpu_connect_s"`
	RSSStart         float64         `json:"rss_start_kib"`
	RSSIdle          float64         `json:"rss_idle_end_kib"`
	RSSPerClient     float64         `json:"rss_per_client_kib"`
	RSSPerClientConn float64         `json:"rss_per_client_after_connect_kib"`
	RSSMarginal      float64         `json:"rss_marginal_per_client_kib"`
	SweepClients     int             `json:"sweep_clients"`
	IdleCPU          float64         `json:"idle_cpu_s"`
	IdleSeconds      float64         `json:"idle_s"`
	IdleCPUPct       float64         `json:"idle_cpu_percent"`
	IdleDrops        int             `json:"idle_drops_total"`
	Threads          int             `json:"server_threads_idle"`
	Version          string          `json:"server_version"`
	Sweep            map[int]float64 `json:"sweep_median_handshakes_per_s,omitempty"`
	SweepCPU         map[int]float64 `json:"sweep_median_server_cpu_per_handshake_ms,omitempty"`
	Sweep90          map[int]float64 `json:"sweep_median_rate90_per_s,omitempty"`
	FailReasons      map[string]int  `json:"fail_reasons,omitempty"`
	Errors           []string        `json:"errors,omitempty"`
	Runs             []*Result       `json:"runs"`
	sweepRaw         map[int][]float64
	sweepCPURaw      map[int][]float64
	sweep90Raw       map[int][]float64
}

type target struct {
	Name   string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
	Status string `json:"status"` // met, not met, not evaluated
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "results directory (runs/*.json)")
	quick := fs.Bool("quick", false, "quick run: the 1,000-client target is not evaluated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(*dir, "runs", "*.json"))
	if len(files) == 0 {
		return fmt.Errorf("no runs/*.json in %s", *dir)
	}
	byName := map[string][]*Result{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		name := r.Server + "-" + r.Proto
		byName[name] = append(byName[name], &r)
	}
	order := []string{"weft-udp", "openvpn-udp", "weft-tcp", "openvpn-tcp"}
	sums := map[string]*variantSummary{}
	for _, name := range order {
		if rs := byName[name]; len(rs) > 0 {
			sums[name] = summarize(name, rs)
		}
	}
	targets := evaluate(sums, *quick)
	md := renderMarkdown(sums, order, targets, *quick)
	out := map[string]any{"variants": sums, "targets": targets, "quick": *quick}
	if b, err := os.ReadFile(filepath.Join(*dir, "meta.json")); err == nil {
		var meta any
		if json.Unmarshal(b, &meta) == nil {
			out["meta"] = meta
		}
	}
	jb, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(filepath.Join(*dir, "results.json"), jb, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "summary.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

func summarize(name string, rs []*Result) *variantSummary {
	s := &variantSummary{Name: name, Rounds: len(rs), Runs: rs, ConnectedMin: math.MaxInt, ConnectedIdleMin: math.MaxInt64,
		FailReasons: map[string]int{}, Sweep: map[int]float64{}, SweepCPU: map[int]float64{}, Sweep90: map[int]float64{},
		sweepRaw: map[int][]float64{}, sweepCPURaw: map[int][]float64{}, sweep90Raw: map[int][]float64{}}
	var marg []float64
	var rate, secs, p50, p99, co, ci, cpu, lg, scpu, rss0, rssI, rssPC, rssPCC, icpu, isec, ipct []float64
	for _, r := range rs {
		s.N, s.Conc, s.Version = r.N, r.Conc, r.Version
		if r.Error != "" {
			s.Errors = append(s.Errors, r.Error)
		}
		if r.ThreadsIdle > s.Threads {
			s.Threads = r.ThreadsIdle
		}
		c := r.Connect
		if c == nil {
			s.ConnectedMin = 0
			continue
		}
		s.ConnectedMin = min(s.ConnectedMin, c.Connected)
		s.ConnectedIdleMin = min(s.ConnectedIdleMin, r.ConnectedIdleEnd)
		s.MaxInflight = max(s.MaxInflight, c.MaxInflight)
		s.Failed += c.Failed
		s.TimedOut += c.TimedOut
		s.Retries += c.Retries
		s.IdleDrops += r.IdleDrops
		for k, v := range c.FailReasons {
			s.FailReasons[k] += v
		}
		rate = append(rate, c.Rate)
		secs = append(secs, c.Seconds)
		p50, p99 = append(p50, c.LatP50), append(p99, c.LatP99)
		co, ci = append(co, c.CtlOutMean), append(ci, c.CtlInMean)
		if s.CtlOutMin == 0 || c.CtlOutMin < s.CtlOutMin {
			s.CtlOutMin = c.CtlOutMin
		}
		cpu = append(cpu, r.ServerCPUPerHSms)
		scpu = append(scpu, r.ServerCPUConnect)
		lg = append(lg, r.LoadgenCPU)
		rss0, rssI = append(rss0, float64(r.RSSStartKiB)), append(rssI, float64(r.RSSIdleEndKiB))
		rssPC, rssPCC = append(rssPC, r.RSSPerClientKiB), append(rssPCC, r.RSSPerClientConn)
		icpu, isec, ipct = append(icpu, r.IdleCPU), append(isec, r.IdleSeconds), append(ipct, r.IdleCPUPercent)
		if r.SweepClients > 0 {
			marg = append(marg, r.RSSMarginalKiB)
			s.SweepClients = r.SweepClients
		}
		for _, sp := range r.Sweep {
			if sp.WaveResult == nil {
				continue
			}
			s.sweepRaw[sp.Conc] = append(s.sweepRaw[sp.Conc], sp.Rate)
			s.sweepCPURaw[sp.Conc] = append(s.sweepCPURaw[sp.Conc], sp.ServerCPUPerHSms)
			s.sweep90Raw[sp.Conc] = append(s.sweep90Raw[sp.Conc], sp.Rate90)
		}
	}
	if s.ConnectedIdleMin == math.MaxInt64 {
		s.ConnectedIdleMin = 0
	}
	s.Rate, s.ConnectSeconds = median(rate), median(secs)
	s.LatP50ms, s.LatP99ms = median(p50), median(p99)
	s.CtlOutMean, s.CtlInMean = median(co), median(ci)
	s.CPUPerHSms, s.ServerCPUConnect, s.LoadgenCPU = median(cpu), median(scpu), median(lg)
	s.RSSStart, s.RSSIdle, s.RSSPerClient, s.RSSPerClientConn = median(rss0), median(rssI), median(rssPC), median(rssPCC)
	s.IdleCPU, s.IdleSeconds, s.IdleCPUPct = median(icpu), median(isec), median(ipct)
	if len(marg) > 0 {
		s.RSSMarginal = median(marg)
	}
	// Server-CPU-bound capacity: what the server's CPU cost per handshake allows on
	// the cores it can use (openvpn is single-threaded).
	s.CapacityCores = 2
	if strings.HasPrefix(name, "openvpn") {
		s.CapacityCores = 1
	}
	if s.CPUPerHSms > 0 {
		s.Capacity = 1000 * float64(s.CapacityCores) / s.CPUPerHSms
	}
	s.PeakRate, s.PeakConc = s.Rate, s.Conc
	for c, v := range s.sweepRaw {
		s.Sweep[c] = median(v)
		s.SweepCPU[c] = median(s.sweepCPURaw[c])
		s.Sweep90[c] = median(s.sweep90Raw[c])
		if s.Sweep[c] > s.PeakRate {
			s.PeakRate, s.PeakConc = s.Sweep[c], c
		}
	}
	return s
}

func evaluate(sums map[string]*variantSummary, quick bool) []target {
	var ts []target
	add := func(name, value string, met bool, evaluated bool) {
		st := "not met"
		if met {
			st = "met"
		}
		if !evaluated {
			st = "not evaluated"
		}
		ts = append(ts, target{Name: name, Value: value, Met: met && evaluated, Status: st})
	}
	for _, p := range []string{"udp", "tcp"} {
		w, o := sums["weft-"+p], sums["openvpn-"+p]
		if w == nil {
			continue
		}
		P := strings.ToUpper(p)
		ok := w.ConnectedMin >= 1000 && w.ConnectedIdleMin >= 1000 && w.IdleDrops == 0
		v := fmt.Sprintf("%d of N=%d connected (min over %d rounds), %d at idle end, %d dropped while idle", w.ConnectedMin, w.N, w.Rounds, w.ConnectedIdleMin, w.IdleDrops)
		if quick {
			v += " (quick run: N<1000)"
		}
		add(fmt.Sprintf("%s: 1,000 clients connected (weft)", P), v, ok, !quick || w.N >= 1000)
		add(fmt.Sprintf("%s: ≤ 64 KiB RSS per client (weft)", P), fmt.Sprintf("%.1f KiB", w.RSSPerClient), w.RSSPerClient <= 64, true)
		add(fmt.Sprintf("%s: ≥ 500 handshakes/s on 2 cores (weft)", P),
			fmt.Sprintf("%.0f/s measured at conc %d (peak %.0f/s at conc %d; load generator on the same 2 cores)", w.Rate, w.Conc, w.PeakRate, w.PeakConc),
			w.Rate >= 500, true)
		if o != nil && o.PeakRate > 0 {
			ratio := w.PeakRate / o.PeakRate
			add(fmt.Sprintf("%s: ≥ 4× openvpn's handshake rate", P),
				fmt.Sprintf("%.2f× (peak %.0f/s vs %.0f/s; at conc %d: %.0f/s vs %.0f/s = %.2f×)", ratio, w.PeakRate, o.PeakRate, w.Conc, w.Rate, o.Rate, w.Rate/o.Rate),
				ratio >= 4, true)
		}
	}
	return ts
}

func renderMarkdown(sums map[string]*variantSummary, order []string, ts []target, quick bool) string {
	var cols []*variantSummary
	for _, n := range order {
		if s := sums[n]; s != nil {
			cols = append(cols, s)
		}
	}
	var b strings.Builder
	mode := "full"
	if quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# weft server scale benchmark (%s)\n\n", mode)
	if len(cols) > 0 {
		c := cols[0]
		fmt.Fprintf(&b, "N=%d clients per variant, at most %d handshakes in flight, %d round(s); medians over rounds. ", c.N, c.Conc, c.Rounds)
		fmt.Fprintf(&b, "One load generator process (weft ovpn.Session, client role, tls-crypt, EC P-256, TLS groups %q) and the server share the machine's %d cores, in one network namespace over loopback. keepalive 10 60.\n\n",
			c.Runs[0].Groups, c.Runs[0].NumCPU)
	}
	b.WriteString("| metric |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s |", c.Name)
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	row := func(label string, f func(*variantSummary) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, c := range cols {
			fmt.Fprintf(&b, " %s |", f(c))
		}
		b.WriteString("\n")
	}
	f0 := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	row("clients connected (min over rounds) / at idle end", func(s *variantSummary) string {
		return fmt.Sprintf("%d / %d of %d", s.ConnectedMin, s.ConnectedIdleMin, s.N)
	})
	row("time to connect all (s)", func(s *variantSummary) string { return f2(s.ConnectSeconds) })
	row("full handshakes/s (conc limit)", func(s *variantSummary) string { return fmt.Sprintf("**%s** (%d)", f0(s.Rate), s.Conc) })
	row("peak handshakes/s over concurrencies tried (at conc)", func(s *variantSummary) string {
		return fmt.Sprintf("%s (%d)", f0(s.PeakRate), s.PeakConc)
	})
	row("max handshakes in flight observed", func(s *variantSummary) string { return strconv.FormatInt(s.MaxInflight, 10) })
	row("handshake latency p50 / p99 (ms)", func(s *variantSummary) string { return f0(s.LatP50ms) + " / " + f0(s.LatP99ms) })
	row("client control pkts per handshake sent / received (min sent)", func(s *variantSummary) string {
		return fmt.Sprintf("%s / %s (%d)", f2(s.CtlOutMean), f2(s.CtlInMean), s.CtlOutMin)
	})
	row("failed / timed out / retried handshakes (all rounds)", func(s *variantSummary) string {
		return fmt.Sprintf("%d / %d / %d", s.Failed, s.TimedOut, s.Retries)
	})
	row("server CPU per handshake (ms)", func(s *variantSummary) string { return f2(s.CPUPerHSms) })
	row("server-CPU-bound handshakes/s (cores)", func(s *variantSummary) string {
		return fmt.Sprintf("%s (%d)", f0(s.Capacity), s.CapacityCores)
	})
	row("load generator CPU during connect (s)", func(s *variantSummary) string { return f2(s.LoadgenCPU) })
	row("server RSS at start → with N idle clients (MiB)", func(s *variantSummary) string {
		return fmt.Sprintf("%s → %s", f1(s.RSSStart/1024), f1(s.RSSIdle/1024))
	})
	row("**server RSS per client (KiB)** (right after connecting)", func(s *variantSummary) string {
		return fmt.Sprintf("**%s** (%s)", f1(s.RSSPerClient), f1(s.RSSPerClientConn))
	})
	row("marginal RSS per client while adding the sweep clients (KiB)", func(s *variantSummary) string {
		if s.SweepClients == 0 {
			return "–"
		}
		return fmt.Sprintf("%s (+%d)", f1(s.RSSMarginal), s.SweepClients)
	})
	row("server CPU, N idle clients (s over window; % of a core)", func(s *variantSummary) string {
		return fmt.Sprintf("%s over %ss; %s%%", f2(s.IdleCPU), f0(s.IdleSeconds), f2(s.IdleCPUPct))
	})
	row("sessions dropped while idle", func(s *variantSummary) string { return strconv.Itoa(s.IdleDrops) })
	row("server threads", func(s *variantSummary) string { return strconv.Itoa(s.Threads) })

	// Sweep.
	concs := map[int]bool{}
	for _, c := range cols {
		for k := range c.Sweep {
			concs[k] = true
		}
	}
	if len(concs) > 0 {
		var ks []int
		for k := range concs {
			ks = append(ks, k)
		}
		sort.Ints(ks)
		fmt.Fprintf(&b, "\nHandshake-rate sweep (%d new clients per wave while the N clients stay connected; handshakes/s for the whole wave / for its first 90%%, and server CPU ms per handshake):\n\n| concurrency |", cols[0].Runs[0].sweepN())
		for _, c := range cols {
			fmt.Fprintf(&b, " %s |", c.Name)
		}
		b.WriteString("\n|---:|")
		for range cols {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, k := range ks {
			fmt.Fprintf(&b, "| %d |", k)
			for _, c := range cols {
				if v, ok := c.Sweep[k]; ok {
					fmt.Fprintf(&b, " %s / %s (%s ms) |", f0(v), f0(c.Sweep90[k]), f2(c.SweepCPU[k]))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}

	b.WriteString("\nTargets:\n\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "- **%s** — %s: %s\n", strings.ToUpper(t.Status), t.Name, t.Value)
	}
	var notes []string
	for _, c := range cols {
		for _, e := range c.Errors {
			notes = append(notes, fmt.Sprintf("%s: error: %s", c.Name, firstLine(e)))
		}
		if len(c.FailReasons) > 0 {
			notes = append(notes, fmt.Sprintf("%s: handshake failure reasons: %v", c.Name, c.FailReasons))
		}
		if len(c.Runs) > 0 && len(c.Runs[0].Extra) > 0 {
			notes = append(notes, fmt.Sprintf("%s: openvpn-only config lines: %s", c.Name, strings.Join(c.Runs[0].Extra, "; ")))
		}
		notes = append(notes, fmt.Sprintf("%s: %s; load average at start of rounds: %s", c.Name, c.Version, loadAvgs(c.Runs)))
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func (r *Result) sweepN() int {
	if len(r.Sweep) > 0 && r.Sweep[0].WaveResult != nil {
		return r.Sweep[0].N
	}
	return 0
}

func loadAvgs(rs []*Result) string {
	var l []string
	for _, r := range rs {
		l = append(l, "["+r.LoadAvg+"]")
	}
	return strings.Join(l, " ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
