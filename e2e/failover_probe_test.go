package e2e

// What a broker failure costs in time, measured from outside the agent:
// when each numbered line was appended (the writer's count) and when it
// was acknowledged (the agent's committed offset on /metrics: every line
// below it is acked, and the lines are seqLineLen bytes each), sampled
// every probeEvery; and when the cluster's metadata names a new leader.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probeEvery is the sampling period: each time below is late by up to it.
const probeEvery = 20 * time.Millisecond

// ackSample is one sample: lines written and lines acked at t.
type ackSample struct {
	t              time.Time
	written, acked int
}

// ackProbe samples the writer and the agent's committed offset.
type ackProbe struct {
	mu      sync.Mutex
	samples []ackSample
	errs    int
	quit    chan struct{}
	done    chan struct{}
}

// startAckProbe samples until stop; metricsURL is the agent's /metrics.
func startAckProbe(t *testing.T, w *seqWriter, metricsURL string) *ackProbe {
	p := &ackProbe{quit: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: time.Second}
	go func() {
		defer close(p.done)
		tk := time.NewTicker(probeEvery)
		defer tk.Stop()
		for {
			now := time.Now()
			written := int(w.written.Load())
			off, err := committedOffset(hc, metricsURL)
			p.mu.Lock()
			if err != nil {
				p.errs++
			} else {
				p.samples = append(p.samples, ackSample{t: now, written: written, acked: int(off / seqLineLen)})
			}
			p.mu.Unlock()
			select {
			case <-p.quit:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *ackProbe) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
}

// committedOffset reads logagent_file_committed_offset_bytes (one file).
func committedOffset(hc *http.Client, url string) (int64, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "logagent_file_committed_offset_bytes{") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		return int64(v), err
	}
	return 0, fmt.Errorf("no committed offset in %s", url)
}

// waitAcked waits until n lines are acked.
func (p *ackProbe) waitAcked(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.last().acked >= n {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-time.After(probeEvery):
		}
	}
	return false
}

// firstAt is the time of the first sample at or after from for which ok
// holds (zero: none).
func (p *ackProbe) firstAt(from time.Time, ok func(ackSample) bool) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.samples {
		if !s.t.Before(from) && ok(s) {
			return s.t
		}
	}
	return time.Time{}
}

// last is the latest sample.
func (p *ackProbe) last() ackSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) == 0 {
		return ackSample{}
	}
	return p.samples[len(p.samples)-1]
}

// after is the first sample taken at or after t.
func (p *ackProbe) after(t time.Time) ackSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.samples {
		if !s.t.Before(t) {
			return s
		}
	}
	return ackSample{}
}

// latencies is, for every line appended in [from, to) and acked, the time
// from its append to its ack (each known to within probeEvery).
func (p *ackProbe) latencies(from, to time.Time) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Duration
	// Line i was appended by the first sample whose written > i, and
	// acked by the first whose acked > i: both walk forward.
	wi, ai := 0, 0
	for i := 0; ; i++ {
		for wi < len(p.samples) && p.samples[wi].written <= i {
			wi++
		}
		for ai < len(p.samples) && p.samples[ai].acked <= i {
			ai++
		}
		if wi == len(p.samples) || ai == len(p.samples) {
			return out
		}
		if w := p.samples[wi].t; !w.Before(from) && w.Before(to) {
			out = append(out, max(0, p.samples[ai].t.Sub(w)))
		}
	}
}

// timeline renders, for each second of append time from `from` (relative
// to zero), the longest append → ack latency of its lines.
func (p *ackProbe) timeline(from, to, zero time.Time) string {
	var b strings.Builder
	for at := from; at.Before(to); at = at.Add(time.Second) {
		ds := p.latencies(at, at.Add(time.Second))
		if len(ds) == 0 {
			continue
		}
		fmt.Fprintf(&b, " %+ds:%s", int(at.Sub(zero).Round(time.Second).Seconds()), slices.Max(ds).Round(10*time.Millisecond))
	}
	return b.String()
}

// latencySummary renders p50, p99, max and the share over a second.
func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no lines"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))].Round(time.Millisecond) }
	over := len(s) - sortSearch(s, time.Second)
	return fmt.Sprintf("%d lines: p50 %s, p99 %s, max %s, %.1f%% over 1 s", len(s), q(0.50), q(0.99),
		s[len(s)-1].Round(time.Millisecond), 100*float64(over)/float64(len(s)))
}

// sortSearch is the index of the first element of sorted s above d.
func sortSearch(s []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(s, d+1)
	return i
}

// leaderWatch polls the metadata of partition 0 of topic until it names a
// leader other than old, and returns when it first did (zero if not within
// timeout).
func leaderWatch(brokers []string, topic string, old int32, timeout time.Duration) (<-chan time.Time, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	out := make(chan time.Time, 1)
	go func() {
		defer cl.Close()
		// Metadata has no change event to wait for: it is polled.
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if l, ok := leaderOf(cl, topic); ok && l >= 0 && l != old {
				out <- time.Now()
				return
			}
			<-tk.C
		}
		out <- time.Time{}
	}()
	return out, nil
}

// leaderOf asks any broker which node leads partition 0 of topic.
func leaderOf(cl *kgo.Client, topic string) (int32, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
		return 0, false
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.Partition == 0 {
			return p.Leader, true
		}
	}
	return 0, false
}
