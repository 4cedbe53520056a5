package fleet

import "testing"

// The record id and header names are read by the transfer and by every
// consumer a user writes: they are part of the contract, pinned here.
func TestRecordContract(t *testing.T) {
	if got, want := RecordID("web-1", "8f3a0c11d2e4b5a6", "1234"), "web-1:8f3a0c11d2e4b5a6:1234"; got != want {
		t.Errorf("RecordID = %q, want %q", got, want)
	}
	for got, want := range map[string]string{HeaderHost: "host", HeaderPath: "path", HeaderOffset: "offset", HeaderFile: "file"} {
		if got != want {
			t.Errorf("header %q, want %q", got, want)
		}
	}
}
