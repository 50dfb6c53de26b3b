package handlers

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// statusTime is OpenVPN's status-file time format.
const statusTime = "2006-01-02 15:04:05"

// FormatStatus renders clients in OpenVPN's status-file format: version 1 (the
// default), 2 (comma-separated with HEADER lines) or 3 (as 2, tab-separated).
func FormatStatus(peers []PeerStatus, version int, now time.Time) []byte {
	var b bytes.Buffer
	if version == 2 || version == 3 {
		sep := ","
		if version == 3 {
			sep = "\t"
		}
		line := func(f ...string) { b.WriteString(strings.Join(f, sep) + "\n") }
		line("TITLE", "weft "+Version)
		line("TIME", now.Format(statusTime), fmt.Sprint(now.Unix()))
		line("HEADER", "CLIENT_LIST", "Common Name", "Real Address", "Virtual Address", "Virtual IPv6 Address",
			"Bytes Received", "Bytes Sent", "Connected Since", "Connected Since (time_t)", "Username", "Client ID", "Peer ID", "Data Channel Cipher")
		for _, p := range peers {
			line("CLIENT_LIST", p.CommonName, p.RealAddr, addrOrEmpty(p.IP4.String(), p.IP4.IsValid()), addrOrEmpty(p.IP6.String(), p.IP6.IsValid()),
				fmt.Sprint(p.BytesIn), fmt.Sprint(p.BytesOut), p.Since.Format(statusTime), fmt.Sprint(p.Since.Unix()),
				undef(p.Username), fmt.Sprint(p.PeerID), fmt.Sprint(p.PeerID), p.Cipher)
		}
		line("HEADER", "ROUTING_TABLE", "Virtual Address", "Common Name", "Real Address", "Last Ref", "Last Ref (time_t)")
		for _, p := range peers {
			for _, ip := range []string{addrOrEmpty(p.IP4.String(), p.IP4.IsValid()), addrOrEmpty(p.IP6.String(), p.IP6.IsValid())} {
				if ip != "" {
					line("ROUTING_TABLE", ip, p.CommonName, p.RealAddr, now.Format(statusTime), fmt.Sprint(now.Unix()))
				}
			}
		}
		line("GLOBAL_STATS", "Max bcast/mcast queue length", "0")
		line("GLOBAL_STATS", "dco_enabled", "0")
		line("END")
		return b.Bytes()
	}
	b.WriteString("OpenVPN CLIENT LIST\n")
	fmt.Fprintf(&b, "Updated,%s\n", now.Format(statusTime))
	b.WriteString("Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since\n")
	for _, p := range peers {
		fmt.Fprintf(&b, "%s,%s,%d,%d,%s\n", p.CommonName, p.RealAddr, p.BytesIn, p.BytesOut, p.Since.Format(statusTime))
	}
	b.WriteString("ROUTING TABLE\nVirtual Address,Common Name,Real Address,Last Ref\n")
	for _, p := range peers {
		for _, ip := range []string{addrOrEmpty(p.IP4.String(), p.IP4.IsValid()), addrOrEmpty(p.IP6.String(), p.IP6.IsValid())} {
			if ip != "" {
				fmt.Fprintf(&b, "%s,%s,%s,%s\n", ip, p.CommonName, p.RealAddr, now.Format(statusTime))
			}
		}
	}
	b.WriteString("GLOBAL STATS\nMax bcast/mcast queue length,0\nEND\n")
	return b.Bytes()
}

func addrOrEmpty(s string, ok bool) string {
	if !ok {
		return ""
	}
	return s
}

func undef(s string) string {
	if s == "" {
		return "UNDEF"
	}
	return s
}

// Version is weft's version string.
var Version = "0.1.0-dev"
