package main

import (
	"flag"
	"fmt"

	"weft/test/harness"
)

// cmdPKI writes an EC P-256 test PKI (ca.crt, server.crt/key, client.crt/key,
// ta.key) into -dir, using the interop tests' generator.
func cmdPKI(args []string) error {
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	p, err := harness.GeneratePKI(*dir, harness.KeyEC)
	if err != nil {
		return err
	}
	fmt.Println(p.Dir)
	return nil
}
