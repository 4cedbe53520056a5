package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/logagent/logagent/taillog"
)

// metrics are the agent's Prometheus metrics. Per-file values are read
// from the tail manager at scrape time; the rest are counted as they happen.
type metrics struct {
	reg *prometheus.Registry

	sendErrors   prometheus.Counter
	retries      prometheus.Counter
	givenUp      prometheus.Counter
	ackLatency   prometheus.Histogram
	watchRestart prometheus.Counter
	applied      prometheus.Counter
	rejected     prometheus.Counter
	posErrors    prometheus.Counter
	// topicRefusals counts, per topic, the times Kafka began refusing it.
	topicRefusals *prometheus.CounterVec
}

func newMetrics(a *Agent) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_producer_errors_total",
			Help: "Kafka send attempts that failed (each is retried)."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_producer_retries_total",
			Help: "Records sent again after a failed attempt."}),
		givenUp: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_producer_rejected_total",
			Help: "Records Kafka can never take (too large); logged with file and offset."}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logagent_producer_ack_latency_seconds",
			Help:    "Time from handing a record to the producer to Kafka's acknowledgement, sampled: one record in 32.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		watchRestart: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_etcd_watch_restarts_total",
			Help: "Times the etcd watch ended and the key was read again."}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_config_applied_total",
			Help: "Collect configs applied."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_config_rejected_total",
			Help: "Collect configs rejected (the last good one stays in force)."}),
		posErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "logagent_positions_save_errors_total",
			Help: "Failed saves of positions.json (retried every second)."}),
		topicRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logagent_topic_refusals_total",
			Help: "Times Kafka began refusing the topic (it does not exist, is not authorised...)."}, []string{"topic"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "logagent_build_info",
		Help: "Always 1; the version is a label."}, []string{"version"})
	build.WithLabelValues(a.version).Set(1)
	reg.MustRegister(m.sendErrors, m.retries, m.givenUp, m.ackLatency, m.watchRestart, m.applied, m.rejected,
		m.posErrors, m.topicRefusals, build, &stateCollector{a: a},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var (
	// entry is the entry's path pattern for a glob's matches, else the path.
	fileLabels   = []string{"path", "topic", "entry"}
	descRead     = prometheus.NewDesc("logagent_file_lines_read_total", "Lines read from the file and handed to Kafka.", fileLabels, nil)
	descAcked    = prometheus.NewDesc("logagent_file_lines_acked_total", "Lines of the file acknowledged by Kafka.", fileLabels, nil)
	descBytes    = prometheus.NewDesc("logagent_file_bytes_read_total", "Bytes read from the file.", fileLabels, nil)
	descOffset   = prometheus.NewDesc("logagent_file_committed_offset_bytes", "Offset up to which every line is acknowledged.", fileLabels, nil)
	descLag      = prometheus.NewDesc("logagent_file_lag_bytes", "File size minus the committed offset.", fileLabels, nil)
	descRotated  = prometheus.NewDesc("logagent_file_rotations_total", "Rotations of the file seen.", fileLabels, nil)
	descTrunc    = prometheus.NewDesc("logagent_file_truncations_total", "Truncations of the file seen (read again from 0).", fileLabels, nil)
	descOversize = prometheus.NewDesc("logagent_file_oversized_lines_total", "Lines longer than max_line_bytes, sent in pieces.", fileLabels, nil)
	descSplit    = prometheus.NewDesc("logagent_file_records_split_total", "Multiline records ended by max_lines or max_bytes (the rest starts a new record).", fileLabels, nil)
	descLost     = prometheus.NewDesc("logagent_file_lost_bytes_total", "Bytes of files deleted while the agent was stopped, known and not read.", fileLabels, nil)
	descState    = prometheus.NewDesc("logagent_file_state", "1 for the file's current state.", append(fileLabels, "state"), nil)
	descRefused  = prometheus.NewDesc("logagent_file_refused", "1 while the entry's file is refused: its real path is outside [agent] allow_paths.", []string{"path"}, nil)
	descBuffer   = prometheus.NewDesc("logagent_buffer_bytes", "Bytes read and not yet acknowledged (bounded by buffer_bytes).", nil, nil)
	descBufMax   = prometheus.NewDesc("logagent_buffer_limit_bytes", "The buffer_bytes setting.", nil, nil)
	descInFlight = prometheus.NewDesc("logagent_producer_in_flight", "Lines handed to the producer and not yet acknowledged.", nil, nil)
	descKafkaUp  = prometheus.NewDesc("logagent_kafka_up", "1 when the last contact with Kafka succeeded.", nil, nil)
	descEtcdUp   = prometheus.NewDesc("logagent_etcd_up", "1 when the etcd connection is ready.", nil, nil)

	descTopicRefused = prometheus.NewDesc("logagent_topic_refused",
		"1 while Kafka refuses the topic: its files are not read further and its lines wait; reason says why in plain words, error is Kafka's.",
		[]string{"topic", "reason", "error"}, nil)
	descTopicSince = prometheus.NewDesc("logagent_topic_refused_since_seconds", "When Kafka began refusing the topic (unix time).",
		[]string{"topic"}, nil)
	descTopicWaiting = prometheus.NewDesc("logagent_topic_waiting_files", "Files of a refused topic whose reading waits for it.",
		[]string{"topic"}, nil)
	descFileWaiting = prometheus.NewDesc("logagent_file_waiting_for_topic", "1 for a file whose reading waits for its topic, which Kafka refuses.",
		[]string{"path", "topic"}, nil)
	descTopicBuffer = prometheus.NewDesc("logagent_topic_buffer_bytes",
		"Bytes of the topic read and not yet acknowledged (a refused topic holds at most a quarter of buffer_bytes).", []string{"topic"}, nil)
)

// stateCollector reads the agent's state at scrape time.
type stateCollector struct{ a *Agent }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRefused
	for _, d := range []*prometheus.Desc{descRead, descAcked, descBytes, descOffset, descLag, descRotated, descTrunc,
		descOversize, descSplit, descLost, descState, descBuffer, descBufMax, descInFlight, descKafkaUp, descEtcdUp,
		descTopicRefused, descTopicSince, descTopicWaiting, descFileWaiting, descTopicBuffer} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.a.mgr.Status() {
		entry := s.Entry
		if entry == "" {
			entry = s.Path
		}
		l := []string{s.Path, s.Topic, entry}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
		}
		gauge := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), l...)
		}
		counter(descRead, s.LinesRead)
		counter(descAcked, s.LinesAcked)
		counter(descBytes, s.BytesRead)
		gauge(descOffset, s.Committed)
		gauge(descLag, s.Lag())
		counter(descRotated, s.Rotations)
		counter(descTrunc, s.Truncations)
		counter(descOversize, s.Oversized)
		counter(descLost, s.LostBytes)
		counter(descSplit, s.RecordsSplit)
		for _, st := range []string{taillog.StateStarting, taillog.StateRunning, taillog.StateWaiting, taillog.StateError} {
			v := 0.0
			if st == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, append(l, st)...)
		}
	}
	for _, p := range c.a.mgr.Refused() {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.GaugeValue, 1, p)
	}
	ch <- prometheus.MustNewConstMetric(descBuffer, prometheus.GaugeValue, float64(c.a.mgr.BufferedBytes()))
	ch <- prometheus.MustNewConstMetric(descBufMax, prometheus.GaugeValue, float64(c.a.cfg.Agent.BufferBytes))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(c.a.mgr.InFlight()))
	ch <- prometheus.MustNewConstMetric(descKafkaUp, prometheus.GaugeValue, up(c.a.prod.Healthy() == nil))
	ch <- prometheus.MustNewConstMetric(descEtcdUp, prometheus.GaugeValue, up(c.a.etcdHealthy() == nil))
	refused := map[string]bool{}
	for _, t := range c.a.Topics() {
		refused[t.Topic] = true
		ch <- prometheus.MustNewConstMetric(descTopicRefused, prometheus.GaugeValue, 1, t.Topic, t.Reason, t.Error)
		ch <- prometheus.MustNewConstMetric(descTopicSince, prometheus.GaugeValue, float64(t.Since.Unix()), t.Topic)
		ch <- prometheus.MustNewConstMetric(descTopicWaiting, prometheus.GaugeValue, float64(len(t.Files)), t.Topic)
		for _, f := range t.Files {
			ch <- prometheus.MustNewConstMetric(descFileWaiting, prometheus.GaugeValue, 1, f, t.Topic)
		}
	}
	for _, b := range c.a.mgr.TopicBudgets() {
		ch <- prometheus.MustNewConstMetric(descTopicBuffer, prometheus.GaugeValue, float64(b.Bytes), b.Topic)
		if !refused[b.Topic] {
			ch <- prometheus.MustNewConstMetric(descTopicRefused, prometheus.GaugeValue, 0, b.Topic, "", "")
		}
	}
}

func up(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
