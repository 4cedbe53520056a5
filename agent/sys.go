package agent

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/kafka"
	"github.com/logagent/logagent/sysagent"
)

// sysAck is the Meta of a Sys Agent record: onAck tells it from a line's.
type sysAck func(error)

// sysMetrics count the Sys Agent's events; its latest headline is read at
// scrape time (sysCollector).
type sysMetrics struct {
	sent, dropped, givenUp, applied, rejected prometheus.Counter
}

// newSys makes the Sys Agent and the follower of its etcd key, and
// registers its metrics.
func (a *Agent) newSys(log *slog.Logger) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_sys_" + name, Help: help})
	}
	m := &sysMetrics{
		sent:     counter("samples_sent_total", "Host metrics samples acknowledged by Kafka."),
		dropped:  counter("samples_dropped_total", "Host metrics samples dropped, oldest first, while Kafka was down longer than the buffer holds."),
		givenUp:  counter("samples_rejected_total", "Host metrics samples Kafka can never take (too large)."),
		applied:  counter("config_applied_total", "Sys configs applied (absent key included: off)."),
		rejected: counter("config_rejected_total", "Sys configs rejected (the last good one stays in force)."),
	}
	a.metrics.reg.MustRegister(m.sent, m.dropped, m.givenUp, m.applied, m.rejected, &sysCollector{a: a})
	a.sys = sysagent.New(a.host, sysagent.DefaultPaths, a.sendSys,
		sysagent.Hooks{Sent: m.sent.Inc, Dropped: m.dropped.Inc, GivenUp: m.givenUp.Inc}, log.With("component", "sys"))
	a.sysSrc = etcd.NewSysSource(a.etcd, a.host, a.cfg.Agent.DataDir, a.cfg.Etcd.DialTimeout, etcd.Hooks{
		Applied:      func(int64) { m.applied.Inc() },
		Rejected:     func(error) { m.rejected.Inc() },
		WatchRestart: a.metrics.watchRestart.Inc,
	}, log.With("component", "etcd"))
}

// runSys follows the sys_config key and runs the Sys Agent from when
// ready is closed until ctx is done; the channel returned is closed once
// both have stopped (before the producer closes: the Sys Agent sends).
func (a *Agent) runSys(ctx context.Context, ready <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			a.sysSrc.Run(ctx, func(c *etcd.SysConfig) {
				if c == nil {
					a.sys.Apply(nil)
					return
				}
				a.sys.Apply(&sysagent.Config{Topic: c.Topic, Interval: c.Interval, Collectors: c.Collectors,
					BufferSamples: c.BufferSamples()})
			})
		}()
		a.sys.Run(ctx)
		<-followed
	}()
	return done
}

// fullSummary is statusSummary with the Sys Agent's part.
func (a *Agent) fullSummary() statusSummary {
	sum := a.statusSummary()
	sum.SysConfig, sum.SysRates = a.sysSrc.State(), a.sysRates()
	return sum
}

// fullSnapshot is snapshot with the Sys Agent's part.
func (a *Agent) fullSnapshot(sum statusSummary, bound bool) (*fleet.Status, statusSummary) {
	st, written := a.snapshot(sum, bound)
	written.SysConfig, written.SysRates = sum.SysConfig, sum.SysRates
	st.SysConfig, st.Sys = sum.SysConfig, a.sys.Status()
	return st, written
}

// sysTopic is the Sys Agent's topic while it is on: a topic no collect
// entry names whose waiting samples must not be forgotten with the lines of
// topics no longer collected.
func (a *Agent) sysTopic() []string {
	if st := a.sys.Status(); st != nil {
		return []string{st.Topic}
	}
	return nil
}

// sysRates reports whether the Sys Agent's latest sample has rates: the
// status is written at once when that changes, so that a host's load
// shows in it right after the Sys Agent is switched on.
func (a *Agent) sysRates() bool {
	st := a.sys.Status()
	return st != nil && st.Latest != nil && st.Latest.Rates
}

// sendSys hands one Sys Agent record to the producer, keyed and
// partitioned by the host: a host's samples stay in order.
func (a *Agent) sendSys(ctx context.Context, topic string, key, value []byte, done func(error)) error {
	m := &kafka.Message{Topic: topic, Key: key, PartitionKey: key, Value: value, Meta: sysAck(done),
		Headers: []kafka.Header{{Key: hdrHost, Value: key}}}
	return a.prod.Send(ctx, m)
}

// sysGauges are the latest headline's figures on /metrics.
var sysGauges = []struct {
	desc *prometheus.Desc
	get  func(*sysagent.Headline) *float64
}{
	{prometheus.NewDesc("logagent_sys_cpu_used_percent", "Host CPU utilisation over the last sample's interval (all CPUs, 100 = all busy).", nil, nil),
		func(h *sysagent.Headline) *float64 { return h.CPU }},
	{prometheus.NewDesc("logagent_sys_load1", "Host load average over 1 minute, at the last sample.", nil, nil),
		func(h *sysagent.Headline) *float64 { return h.Load1 }},
	{prometheus.NewDesc("logagent_sys_memory_used_percent", "Host memory used (total - available), at the last sample.", nil, nil),
		func(h *sysagent.Headline) *float64 { return h.MemoryUsed }},
	{prometheus.NewDesc("logagent_sys_disk_busy_percent", "Busy time of the host's busiest disk over the last sample's interval.", nil, nil),
		func(h *sysagent.Headline) *float64 { return h.DiskBusy }},
	{prometheus.NewDesc("logagent_sys_network_receive_bytes_per_second", "Bytes received per second on every interface but loopback, last sample.", nil, nil),
		func(h *sysagent.Headline) *float64 { return h.NetworkRx }},
	{prometheus.NewDesc("logagent_sys_network_transmit_bytes_per_second", "Bytes sent per second on every interface but loopback, last sample.", nil, nil),
		func(h *sysagent.Headline) *float64 { return h.NetworkTx }},
}

var descSysBuffered = prometheus.NewDesc("logagent_sys_buffered_samples", "Host metrics samples waiting for Kafka.", nil, nil)

// sysCollector reads the Sys Agent's latest headline at scrape time: a
// figure the last sample does not have (off, first sample) is absent.
type sysCollector struct{ a *Agent }

func (c *sysCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSysBuffered
	for _, g := range sysGauges {
		ch <- g.desc
	}
}

func (c *sysCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.sys.Status()
	if st == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descSysBuffered, prometheus.GaugeValue, float64(st.Buffered))
	if st.Latest == nil {
		return
	}
	for _, g := range sysGauges {
		if v := g.get(st.Latest); v != nil {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, *v)
		}
	}
}
