package transfer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the transfer's, on its own registry (served at /metrics).
type metrics struct {
	reg          *prometheus.Registry
	consumed     *prometheus.CounterVec // by topic
	indexed      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	retried      prometheus.Counter
	bulkErrors   prometheus.Counter
	commitErrors prometheus.Counter
	lag          *prometheus.GaugeVec // by topic, partition
	buffered     prometheus.Gauge
	bulkLatency  prometheus.Histogram
	applied      prometheus.Counter
	rejected     prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logtransfer_records_consumed_total",
			Help: "Records read from Kafka (a record read again after a restart or rebalance counts again)."}, []string{"topic"}),
		indexed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logtransfer_records_indexed_total",
			Help: "Records OpenSearch accepted (created or replaced by _id)."}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logtransfer_records_dead_lettered_total",
			Help: "Records OpenSearch refused for good, sent to the dead-letter topic."}, []string{"topic"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Name: "logtransfer_records_retried_total",
			Help: "Records sent to OpenSearch again after a failed bulk request or a 429/5xx answer."}),
		bulkErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "logtransfer_bulk_errors_total",
			Help: "Bulk requests that failed whole (OpenSearch unreachable, 429, 5xx)."}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "logtransfer_commit_errors_total",
			Help: "Offset commits Kafka refused (the records are indexed again by the partition's next owner)."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "logtransfer_consumer_lag",
			Help: "Records in the partition after the last one this transfer read."}, []string{"topic", "partition"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "logtransfer_buffered_bytes",
			Help: "Memory held by the records fetched from Kafka and not yet indexed (decompressed, with each record's structures); at most buffer_bytes."}),
		bulkLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logtransfer_bulk_duration_seconds",
			Help:    "Time of one bulk request, sent to answered.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "logtransfer_config_applied_total",
			Help: "Values of /logtransfer/config applied."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "logtransfer_config_rejected_total",
			Help: "Values of /logtransfer/config rejected (the last good one stays)."}),
	}
	m.reg.MustRegister(m.consumed, m.indexed, m.deadLettered, m.retried, m.bulkErrors, m.commitErrors,
		m.lag, m.buffered, m.bulkLatency, m.applied, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
