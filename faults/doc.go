// Package faults is logagent's fault suite. It builds the binary once (go
// build at the repository root, in TestMain) and runs it as a child
// process against an in-process etcd (embed) and an in-process Kafka
// (kfake with a data dir, so that a broker can go away and come back with
// its log), while it injects the faults the delivery guarantees are about:
// SIGTERM and SIGKILL mid-stream, rename rotation (also faster than the
// agent reads), truncation and copytruncate, a deleted file with unread
// lines, Kafka unreachable (15 s, 5 min, at start), etcd unreachable (at
// start, while running), bad etcd values and bad input lines, and a
// data_dir that cannot be written. Case 14 checks that one record per key
// (the line's id, host:file:offset) is exactly the lines written, across
// kill -9, rotation, copytruncate and restart.
//
// A writer goroutine appends numbered lines ("seq=%09d" padded to 90
// bytes) while the fault happens; a checker consumes the topics and counts
// lost lines (a number never seen) and duplicates (a number seen more than
// once), and checks each record's value byte for byte and its host, path
// and offset headers. A sampler reads the agent's VmHWM and VmRSS from
// /proc/<pid>/status every 50 ms. Each case logs one line for the record:
//
//	RESULT case=<name> client=<sarama|franz-go> lost=N dup=M peak_rss_mb=X peak_anon_mb=A lines=L [key=value ...]
//
// Run it with
//
//	go test -count=1 -v ./faults/
//	go test -count=1 -v ./faults/ | grep RESULT    # the figures only
//
// (about 3.5 minutes on 2 cores; -race is not needed: the binary under
// test is built without it). The 5-minute Kafka outage (case 6b) runs only
// with LOGAGENT_LONG=1, about 5 minutes per client:
//
//	LOGAGENT_LONG=1 go test -count=1 -v -timeout 30m -run KafkaOutage5min ./faults/
//
// The cases where the Kafka client matters (restarts, rotation, truncation,
// deletion, outages, record bytes) run with both clients, sarama and
// franz-go; the others (etcd, config values and entries, the partial line,
// data_dir) run with the default client only.
//
// Environment:
//
//	LOGAGENT_LONG=1              also run the 5-minute outage
//	LOGAGENT_FAULT_ALL_CLIENTS=1 run every case with both clients
//	LOGAGENT_FAULT_CLIENTS=X     only client X (sarama or franz-go)
//	LOGAGENT_FAULT_RESULTS=FILE  also append the RESULT lines to FILE
//	LOGAGENT_FAULT_DUMP=1        log the agent's stderr of every case (always on failure)
//	LOGAGENT_FAULT_NO_MOUNT=1    case 9 without mount (see below)
//
// Case 9 (data_dir full, then read-only) mounts a 64 KiB tmpfs as data_dir
// when it may (root in a container may), fills it, then remounts it
// read-only. Where mount is not permitted it moves data_dir away and puts a
// regular file in its place, which stops root too (chmod does not).
package faults
