// Package testenv starts the real servers the tests and the demo run
// against, in process: etcd (go.etcd.io/etcd/server/v3/embed) and Kafka
// (franz-go's kfake). Everything listens on 127.0.0.1 only. It is never
// imported by the logagent binary.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"gopkg.in/ini.v1"
)

// Etcd is an embedded single-member etcd.
type Etcd struct {
	e        *embed.Etcd
	once     sync.Once
	Endpoint string // host:port
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartEtcd starts etcd with its data in dir, its client port at port (0 = any free one).
func StartEtcd(dir string, port int) (*Etcd, error) { return startEtcd(dir, port, nil) }

// StartEtcdTLS starts etcd serving TLS with server's certificate and
// requiring client certificates signed by clientCA; Endpoint is https://.
func StartEtcdTLS(dir string, server CertFiles, clientCA *CA) (*Etcd, error) {
	return startEtcd(dir, 0, &transport.TLSInfo{CertFile: server.Cert, KeyFile: server.Key,
		TrustedCAFile: clientCA.File, ClientCertAuth: true})
}

func startEtcd(dir string, port int, tlsInfo *transport.TLSInfo) (*Etcd, error) {
	var err error
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	peer, err := FreePort()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.Name = "test"
	scheme := "http"
	if tlsInfo != nil {
		scheme = "https"
		cfg.ClientTLSInfo = *tlsInfo
	}
	cu, _ := url.Parse(fmt.Sprintf("%s://127.0.0.1:%d", scheme, port))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peer))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready after 30s")
	}
	ep := fmt.Sprintf("127.0.0.1:%d", port)
	if tlsInfo != nil {
		ep = "https://" + ep
	}
	return &Etcd{e: e, Endpoint: ep}, nil
}

// Close stops etcd.
func (e *Etcd) Close() { e.once.Do(e.e.Close) }

// Kafka is an in-process Kafka (kfake) that creates topics on first use.
type Kafka struct {
	once  sync.Once
	C     *kfake.Cluster
	Addrs []string
}

// StartKafka starts kfake on port (0 = any free one), in memory.
func StartKafka(port int) (*Kafka, error) { return StartKafkaDir(port, "") }

// StartKafkaDir starts kfake on port (0 = any free one), persisting its
// data in dataDir (empty = in memory): closed and started again on the same
// port and dir, it is a broker that went away and came back with its log.
func StartKafkaDir(port int, dataDir string) (*Kafka, error) {
	var opts []kfake.Opt
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir), kfake.SyncWrites())
	}
	return StartKafkaOpts(opts...)
}

// StartKafkaOpts starts kfake on any free port with more options (TLS,
// SASL).
func StartKafkaOpts(more ...kfake.Opt) (*Kafka, error) {
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}, more...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return &Kafka{C: c, Addrs: c.ListenAddrs()}, nil
}

// StartKafkaStrict starts kfake on port (0 = any free one) like a
// production broker: it creates no topic on demand
// (auto.create.topics.enable=false), only topics.
func StartKafkaStrict(port int, topics ...string) (*Kafka, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(1, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return &Kafka{C: c, Addrs: c.ListenAddrs()}, nil
}

// CreateTopic creates topic (one partition), as an operator would, and
// returns its id (what newer produce requests name it by).
func (k *Kafka) CreateTopic(topic string) ([16]byte, error) {
	var id [16]byte
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs...))
	if err != nil {
		return id, err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return id, fmt.Errorf("create topic %s: %w", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		return id, fmt.Errorf("create topic %s: %w", topic, err)
	}
	return resp.Topics[0].TopicID, nil
}

// Close stops the cluster.
func (k *Kafka) Close() { k.once.Do(k.C.Close) }

// Record is what a consumer saw.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Timestamp time.Time
}

// Consumer reads topics from the beginning.
type Consumer struct{ cl *kgo.Client }

// NewConsumer consumes topics (more can be added with AddTopics).
func NewConsumer(addrs []string, topics ...string) (*Consumer, error) {
	return NewConsumerOpts(addrs, kgo.ConsumeTopics(topics...))
}

// NewConsumerOpts is NewConsumer with client options (topics, TLS, SASL).
func NewConsumerOpts(addrs []string, opts ...kgo.Opt) (*Consumer, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Consumer{cl: cl}, nil
}

// AddTopics starts consuming more topics.
func (c *Consumer) AddTopics(topics ...string) { c.cl.AddConsumeTopics(topics...) }

// Poll returns the records that arrive within d.
func (c *Consumer) Poll(ctx context.Context, d time.Duration) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	fs := c.cl.PollFetches(ctx)
	var out []Record
	var err error
	fs.EachError(func(t string, p int32, e error) {
		if e != context.DeadlineExceeded && e != context.Canceled && err == nil {
			err = fmt.Errorf("fetch %s/%d: %w", t, p, e)
		}
	})
	fs.EachRecord(func(r *kgo.Record) {
		h := make(map[string]string, len(r.Headers))
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		out = append(out, Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: h,
			Timestamp: r.Timestamp})
	})
	return out, err
}

// Close closes the consumer.
func (c *Consumer) Close() { c.cl.Close() }

// WriteConfig writes an agent ini for the given servers into dir, with
// timings that keep in-process tests quick and extra's keys over them, and
// returns its path.
func WriteConfig(dir, host string, brokers []string, etcdEndpoint, extra string) (string, error) {
	p := filepath.Join(dir, "config.ini")
	c := AgentINI{Host: host, DataDir: filepath.Join(dir, "data"), Brokers: brokers, Etcd: etcdEndpoint}
	return p, c.Write(p, `[agent]
shutdown_timeout = 5s
rotate_wait = 500ms
poll_interval = 100ms
[kafka]
linger = 1ms
retry_backoff = 50ms
[etcd]
dial_timeout = 1s
`, extra)
}

// Overlay returns the ini text base with the keys of extra set in it:
// a key of both takes extra's value (the agent refuses a key given twice).
func Overlay(base, extra string) (string, error) {
	opts := ini.LoadOptions{SpaceBeforeInlineComment: true}
	f, err := ini.LoadSources(opts, []byte(base))
	if err != nil {
		return "", err
	}
	x, err := ini.LoadSources(opts, []byte(extra))
	if err != nil {
		return "", err
	}
	for _, sec := range x.Sections() {
		for _, k := range sec.Keys() {
			f.Section(sec.Name()).Key(k.Name()).SetValue(k.Value())
		}
	}
	var b strings.Builder
	if _, err := f.WriteTo(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// AlterConfig sets key to value on a topic (typ kmsg.ConfigResourceTypeTopic,
// name the topic) or on the brokers (kmsg.ConfigResourceTypeBroker, name ""),
// as kafka-configs --alter does.
func (k *Kafka) AlterConfig(typ kmsg.ConfigResourceType, name, key, value string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value = key, kmsg.StringPtr(value)
	r.Configs = append(r.Configs, c)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(context.Background(), cl)
	if err == nil && len(resp.Resources) > 0 {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("set %s=%s on %s: %w", key, value, name, err)
	}
	return nil
}
