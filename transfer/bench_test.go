package transfer

// Benchmarks: the transfer's documents/s and CPU per million lines against
// a bare bulk loop that posts the same documents to the same OpenSearch
// node (no Kafka, no commits). Run:
//
//	go test -run '^$' -bench 'Index' -benchtime 20000x ./transfer
//
// CPU is this process's (user+system): for BenchmarkTransferIndex it
// includes the in-process Kafka (kfake), so it is an upper bound. The
// figures that are reported come from `make bench` (go run ./bench,
// workload T), which runs the transfer as a process and the bare loop as
// another, each with its own CPU; these are for profiling one package.

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/fleet"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds documents/s and CPU seconds per million documents.
func report(b *testing.B, n int, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "docs/s")
	b.ReportMetric(cpu.Seconds()/float64(n)*1e6, "cpu-s/Mdocs")
}

func benchRecords(topic string, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = line(topic, "bench-host", "f1", int64(i)*120,
			fmt.Sprintf(`10.0.0.%d - - [06/Dec/2026:07:00:00 +0000] "GET /item/%d HTTP/1.1" 200 %d "-" "bench"`, i%250, i, i%5000))
		recs[i].Timestamp = time.Now()
	}
	return recs
}

func BenchmarkAppendBulk(b *testing.B) {
	recs := benchRecords("t", 1000)
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		appendBulk(&buf, recs[i%len(recs)], "logs-web")
	}
	b.SetBytes(int64(buf.Len()))
}

// BenchmarkBareBulkIndex posts b.N documents in 5 MiB bulks, one after the
// other: the bound the transfer is compared with.
func BenchmarkBareBulkIndex(b *testing.B) {
	node := openSearch(b)
	index := fmt.Sprintf("bench-bare-%d", time.Now().UnixNano())
	s := newSearch(conf.OpenSearch{URLs: []string{node.URL}, Timeout: time.Minute})
	s.putTemplate(context.Background(), index, 1, 0)
	recs := benchRecords("t", b.N)
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	var body bytes.Buffer
	for i := 0; i < len(recs); {
		body.Reset()
		j := i
		for ; j < len(recs) && body.Len() < 5<<20; j++ {
			appendBulk(&body, recs[j], index)
		}
		if _, err := s.bulk(context.Background(), body.Bytes(), j-i); err != nil {
			b.Fatal(err)
		}
		i = j
	}
	report(b, b.N, time.Since(start), cpuTime()-cpu0)
}

// BenchmarkTransferIndex has the Transfer index b.N records produced
// beforehand to Kafka, until their offsets are committed.
func BenchmarkTransferIndex(b *testing.B) {
	e := newEnv(b)
	topic, index := fmt.Sprintf("bench-%d", time.Now().UnixNano()), fmt.Sprintf("bench-tr-%d", time.Now().UnixNano())
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	recs := benchRecords(topic, b.N)
	for i := 0; i < len(recs); i += 5000 {
		e.produce(recs[i:min(i+5000, len(recs))]...)
	}
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	e.start("bench")
	waitFor(b, "every offset committed", func() (bool, string) {
		c := e.committed(topic)
		return c >= int64(b.N), fmt.Sprint(c)
	})
	report(b, b.N, time.Since(start), cpuTime()-cpu0)
}
