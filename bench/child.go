package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The bare producer loops run in a child process (the bench binary
// re-executed with a hidden subcommand), so that their CPU time and peak
// RSS come from their own rusage, apart from the in-process broker.
const (
	childSarama = "__bare-sarama"
	childFranz  = "__bare-franz"
)

// childResult is what a child prints on stdout as its last line.
type childResult struct {
	Sent   int64  `json:"sent"`
	Acked  int64  `json:"acked"`
	Errors int64  `json:"errors"`
	Err    string `json:"err,omitempty"`
}

// The producer settings every Go contender shares with logagent's defaults
// (conf/config.ini): lz4, acks=all, idempotent, 5 ms linger.
const benchLinger = 5 * time.Millisecond

func childMain(kind string, args []string) int {
	fs := flag.NewFlagSet(kind, flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	file := fs.String("file", "", "")
	timeout := fs.Duration("timeout", 5*time.Minute, "")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res childResult
	var err error
	switch kind {
	case childSarama:
		res, err = bareSarama(ctx, strings.Split(*brokers, ","), *topic, *file)
	case childFranz:
		res, err = bareFranz(ctx, strings.Split(*brokers, ","), *topic, *file)
	}
	if err != nil {
		res.Err = err.Error()
	}
	return printResult(res, err)
}

// printResult writes a child's result as one JSON line on stdout, for the
// bench to read, and returns the child's exit code.
func printResult(res any, err error) int {
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	if err != nil {
		return 1
	}
	return 0
}

func lines(file string, fn func([]byte) bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if !fn(s.Bytes()) {
			return nil
		}
	}
	return s.Err()
}

// bareSarama: AsyncProducer, Return.Successes, wait for every ack.
func bareSarama(ctx context.Context, brokers []string, topic, file string) (childResult, error) {
	var res childResult
	cfg := sarama.NewConfig()
	cfg.ClientID = "bench-bare-sarama"
	cfg.Version = sarama.V2_8_0_0 // as logagent's default [kafka] version
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // sarama requires it with Idempotent
	cfg.Producer.Compression = sarama.CompressionLZ4
	cfg.Producer.Flush.Frequency = benchLinger
	cfg.Producer.Retry.Max = 5
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return res, err
	}
	var acked, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range p.Successes() {
			acked.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for pe := range p.Errors() {
			failed.Add(1)
			e := pe.Err
			firstErr.CompareAndSwap(nil, &e)
		}
	}()
	err = lines(file, func(b []byte) bool {
		v := make([]byte, len(b)) // the scanner reuses its buffer
		copy(v, b)
		select {
		case p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(v)}:
			res.Sent++
			return true
		case <-ctx.Done():
			return false
		}
	})
	if err == nil {
		err = ctx.Err()
	}
	// AsyncClose flushes what is buffered and closes Successes and Errors
	// once every message is acknowledged or failed: waiting for both
	// readers is waiting for every ack.
	p.AsyncClose()
	wg.Wait()
	res.Acked, res.Errors = acked.Load(), failed.Load()
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("%d sends failed, first: %v", res.Errors, *firstErr.Load())
	}
	if err == nil && res.Acked != res.Sent {
		err = errors.New("not every message was acknowledged")
	}
	return res, err
}

// bareFranz: kgo Produce with a promise per record, then Flush.
func bareFranz(ctx context.Context, brokers []string, topic, file string) (childResult, error) {
	var res childResult
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("bench-bare-franz"),
		kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent by default
		kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerLinger(benchLinger))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	var acked, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		acked.Add(1)
	}
	err = lines(file, func(b []byte) bool {
		v := make([]byte, len(b))
		copy(v, b)
		cl.Produce(ctx, &kgo.Record{Value: v}, promise)
		res.Sent++
		return ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if ferr := cl.Flush(ctx); err == nil && ferr != nil {
		err = ferr
	}
	res.Acked, res.Errors = acked.Load(), failed.Load()
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("%d records failed, first: %v", res.Errors, *firstErr.Load())
	}
	if err == nil && res.Acked != res.Sent {
		err = errors.New("not every record was acknowledged")
	}
	return res, err
}
