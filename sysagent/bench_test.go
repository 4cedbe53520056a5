package sysagent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/logagent/logagent/etcd"
)

// BenchmarkSample is one sample of the real host with every collector,
// encoded as the record sent: its time per op over 10 s is the Sys Agent's
// share of a core at the default interval.
func BenchmarkSample(b *testing.B) {
	s := NewSampler("bench", DefaultPaths, etcd.SysCollectors)
	now := time.Now()
	s.Sample(now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Second)
		r := s.Sample(now)
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}
