package test

import (
	"os"
	"testing"

	"weft/test/harness"
)

// TestHelperProcess is not a real test: the harness re-executes the test binary
// with -test.run=^TestHelperProcess$ inside a namespace to run a traffic helper
// (TCP sink or source). See harness.HelperMain.
func TestHelperProcess(t *testing.T) {
	if !harness.IsHelper() {
		t.Skip("traffic helper entry point; only runs when re-executed by the harness")
	}
	os.Exit(harness.HelperMain())
}
