package netstack

// SetRACK turns gVisor's RACK loss detection on or off in o (tests and
// benchmarks compare both).
func SetRACK(o *Options, on bool) { o.rack = on }
